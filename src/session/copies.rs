//! The server's outstanding requests to one client (COPYIN, COPYINSTR), matched by reqno.
//!
//! A syscall task registers a slot, the COPYIN frame goes out, and the task sleeps until the
//! reader delivers the RESP with the same reqno, or the connection dies (then the copy fails
//! with `EFAULT`, sp-protocol.md §12). Responses are validated against the request: a COPYIN
//! answer must have exactly the requested length, a COPYINSTR answer 1…maxlen bytes; anything
//! else fails that copy with `EFAULT` (the reference would read past the buffer).

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::poll_fn;
use std::task::{Poll, Waker};

use kernel::Errno;

/// What the server asked for.
#[derive(Clone, Copy, Debug)]
pub enum CopyKind {
    /// Exactly `len` bytes.
    In { len: usize },
    /// A string of at most `maxlen` bytes including its NUL.
    InStr { maxlen: usize },
}

struct Slot {
    kind: CopyKind,
    result: Option<Result<Vec<u8>, Errno>>,
    waker: Option<Waker>,
}

/// Outstanding copy requests of one connection, plus its reqno counter.
#[derive(Default)]
pub struct Copies {
    st: RefCell<CopiesState>,
}

#[derive(Default)]
struct CopiesState {
    next_reqno: u64,
    pending: HashMap<u64, Slot>,
    dead: bool,
    /// Answer buffers given back by the kernel (`recycle`), reused by `deliver`.
    spare: Vec<Vec<u8>>,
}

/// Spare answer buffers kept per connection, and the largest kept.
const SPARE_MAX: usize = 8;
const SPARE_BYTES_MAX: usize = 64 << 10;

impl Copies {
    /// Takes the next server reqno (COPYOUT and RAISE consume one too, as in the reference).
    pub fn next_reqno(&self) -> u64 {
        let mut st = self.st.borrow_mut();
        let r = st.next_reqno;
        st.next_reqno = r.wrapping_add(1);
        r
    }

    /// Registers a copy request; returns its reqno, or `EFAULT` if the connection is gone.
    pub fn register(&self, kind: CopyKind) -> Result<u64, Errno> {
        let mut st = self.st.borrow_mut();
        if st.dead {
            return Err(Errno::EFAULT);
        }
        let r = st.next_reqno;
        st.next_reqno = r.wrapping_add(1);
        st.pending.insert(
            r,
            Slot {
                kind,
                result: None,
                waker: None,
            },
        );
        Ok(r)
    }

    /// Waits for the answer to `reqno`. Dropping the future forgets the request.
    pub async fn wait(&self, reqno: u64) -> Result<Vec<u8>, Errno> {
        struct Forget<'a>(&'a Copies, u64);
        impl Drop for Forget<'_> {
            fn drop(&mut self) {
                self.0.st.borrow_mut().pending.remove(&self.1);
            }
        }
        let _forget = Forget(self, reqno);
        poll_fn(|cx| {
            let mut st = self.st.borrow_mut();
            let Some(slot) = st.pending.get_mut(&reqno) else {
                return Poll::Ready(Err(Errno::EFAULT));
            };
            match slot.result.take() {
                Some(r) => Poll::Ready(r),
                None => {
                    slot.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// Delivers a RESP frame's payload; a reqno nobody waits for is dropped (as the reference).
    pub fn deliver(&self, reqno: u64, payload: &[u8]) {
        let waker = {
            let mut st = self.st.borrow_mut();
            // Disjoint borrows of the table and the spare buffers: one lookup.
            let CopiesState { pending, spare, .. } = &mut *st;
            let Some(slot) = pending.get_mut(&reqno) else {
                return;
            };
            if slot.result.is_some() {
                return; // a duplicate answer: the first one stands
            }
            let ok = match slot.kind {
                CopyKind::In { len } => payload.len() == len,
                CopyKind::InStr { maxlen } => !payload.is_empty() && payload.len() <= maxlen,
            };
            let result = match ok {
                true => {
                    let mut v = spare.pop().unwrap_or_default();
                    v.clear();
                    v.extend_from_slice(payload);
                    Ok(v)
                }
                false => Err(Errno::EFAULT),
            };
            slot.result = Some(result);
            slot.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// A buffer holding `data`: a spare one if there is one.
    pub fn buffer_with(&self, data: &[u8]) -> Vec<u8> {
        let mut v = self.st.borrow_mut().spare.pop().unwrap_or_default();
        v.clear();
        v.extend_from_slice(data);
        v
    }

    /// Keeps a buffer that an answer was delivered in for the next answer (bounded).
    pub fn recycle(&self, buf: Vec<u8>) {
        let mut st = self.st.borrow_mut();
        // An empty shell (a kept prefetch whose buffer went to the kernel) is not worth a slot.
        if st.spare.len() < SPARE_MAX && buf.capacity() != 0 && buf.capacity() <= SPARE_BYTES_MAX {
            st.spare.push(buf);
        }
    }

    /// The connection died: every waiting copy fails with `EFAULT`, new ones fail at once.
    pub fn fail_all(&self) {
        let wakers: Vec<Waker> = {
            let mut st = self.st.borrow_mut();
            st.dead = true;
            st.pending
                .values_mut()
                .filter_map(|s| {
                    s.result.get_or_insert(Err(Errno::EFAULT));
                    s.waker.take()
                })
                .collect()
        };
        wakers.into_iter().for_each(Waker::wake);
    }
}

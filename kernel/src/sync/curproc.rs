//! The process a syscall runs for (NetBSD's `curproc`), and a cooperative yield: for work
//! deep below the syscall layer that has no `&Proc` at hand and may run long — an FFS walk
//! whose length a crafted image decides — so it can let its loop's other tasks run and stop
//! once its caller is exiting.
//!
//! [`for_process`] wraps a syscall's future: while it is polled, [`caller_exiting`] on that
//! thread answers for its process. The loops are single-threaded executors and a poll never
//! runs another task's poll inside it, so one thread-local slot per thread is enough.

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::Proc;

thread_local! {
    /// The process whose syscall is being polled on this thread, if any.
    static CURRENT: RefCell<Option<Arc<Proc>>> = const { RefCell::new(None) };
}

/// Takes the syscall's reference back out of the slot and puts the previous occupant in,
/// also when the poll unwinds.
struct Restore<'a> {
    prev: Option<Arc<Proc>>,
    mine: &'a mut Option<Arc<Proc>>,
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        let prev = self.prev.take();
        *self.mine = CURRENT.with(|c| c.replace(prev));
    }
}

/// Runs `fut` as work of process `p`: inside its polls, [`caller_exiting`] asks `p`. One
/// counted reference per syscall moves in and out of the slot around each poll.
///
/// The future is taken pinned where it lies (`std::pin::pin!` in the caller's own state):
/// a syscall future is several KiB, and wrapping it by value copied all of it once more per
/// call (1–2% of a loop's time with getpid, docs/benchmarks.md issue 17).
pub fn for_process<'a, F: Future>(p: &Arc<Proc>, fut: Pin<&'a mut F>) -> ForProcess<'a, F> {
    ForProcess {
        fut,
        mine: Some(p.clone()),
    }
}

/// The future of [`for_process`].
pub struct ForProcess<'a, F> {
    fut: Pin<&'a mut F>,
    /// The process's reference while the future is not being polled.
    mine: Option<Arc<Proc>>,
}

impl<F: Future> Future for ForProcess<'_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        let prev = CURRENT.with(|c| c.replace(this.mine.take()));
        let _restore = Restore {
            prev,
            mine: &mut this.mine,
        };
        this.fut.as_mut().poll(cx)
    }
}

/// Whether the process this work runs for is exiting ([`crate::Kernel::begin_exit`]): work
/// that can stop should end with `EINTR`. False outside a syscall.
pub fn caller_exiting() -> bool {
    CURRENT.with(|c| c.borrow().as_ref().is_some_and(|p| p.exiting()))
}

/// Lets the other runnable tasks of this loop run before continuing (the task wakes itself
/// and goes to the back of its executor's queue).
pub async fn yield_now() {
    let mut yielded = false;
    poll_fn(move |cx| {
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

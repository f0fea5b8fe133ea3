//! Sleeping in the kernel: wait queues woken from any thread, interruptible sleeps, a mutex.
//!
//! NetBSD sleeps on condition variables (`cv_wait_sig`); a task here awaits a [`WaitQueue`].
//! The futures run on single-threaded executors, one per loop thread, and the thread that
//! changes a condition may be another loop's: wake-ups go through std [`Waker`]s, which are
//! thread-safe.
//!
//! - [`WaitQueue`]: the sleepers of one condition. Whoever changes the condition calls
//!   [`WaitQueue::wake_all`] (or [`WaitQueue::wake_one`]) *after* the change.
//! - [`sleep_until`] / [`wait_for`]: the interruptible sleep of a process (`cv_wait_sig`):
//!   `EINTR` as soon as the process is exiting ([`crate::Kernel::begin_exit`],
//!   sp-protocol.md §12 step 3), also for sleeps that start afterwards.
//! - [`for_process`] / [`caller_exiting`]: the process a syscall runs for (`curproc`), for
//!   long work below the syscall layer (FFS walks) that stops once its caller is exiting;
//!   [`yield_now`] lets the loop's other tasks run in the middle of such work.
//! - [`sleep_for`]: a timed interruptible sleep (nanosleep) on the host's timer
//!   ([`crate::Host::sleep`]; [`std_sleep`] is the portable default, one timer thread).
//! - [`Selector`] / [`select_wait`]: one poller on many queues (poll, select, kevent),
//!   with its timeout and the timers files ask for.
//! - [`Mutex`]: an async mutex for state that must stay locked across an `.await` (for the
//!   VFS: a vnode's I/O lock). Never hold a `std::sync::Mutex` across an `.await` instead.
//! - [`RwLock`]: an async reader-writer lock without a value, preferring writers (an FFS
//!   mount's engine and its inodes: shared for reads, exclusive for changes).
//!
//! No lost wake-ups: a sleeper registers its waker *before* it evaluates its condition, and
//! a waker takes the queue lock *after* changing the condition, so either the sleeper sees
//! the change or the waker sees the registration.
//!
//! ```ignore
//! // Sleep until the pipe has data (or EINTR when the client disconnects):
//! let n = sync::wait_for(p, &pipe.readers, || pipe.try_take()).await?;
//! // Elsewhere, after putting data in: pipe.readers.wake_all();
//! ```

mod curproc;
mod mutex;
mod rwlock;
mod select;
mod timer;
mod wait;

pub use curproc::{caller_exiting, for_process, yield_now};
pub use mutex::{Mutex, MutexGuard};
pub use rwlock::{ReadGuard, RwLock, WriteGuard};
pub use select::{select_wait, Selector};
pub use timer::{sleep_for, std_sleep, HostSleep};
pub use wait::{sleep_until, wait_for, Interrupt, WaitQueue};

#[cfg(test)]
pub(crate) mod tests;

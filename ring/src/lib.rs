//! `ring`: a per-vCPU runtime of pinned threads, each with its own io_uring and a small
//! single-threaded executor for `!Send` futures, plus sockets and timers on top.
//!
//! Where io_uring cannot be set up (the `kernel.io_uring_disabled` sysctl, seccomp in a
//! container runtime, a memlock limit, an old kernel) the loops run on epoll instead, with the
//! same behaviour behind the same API. `Config::backend` (or, when it is `None`, the
//! `RUMP_IO_BACKEND` environment variable: `io_uring`, `epoll` or `auto`, the default) chooses;
//! `auto` falls back after a one-line warning on stderr that names the cause and the remedy.
//! `LoopHandle::backend` tells which one runs. The backend is chosen once per runtime; each
//! loop holds an enum of the two drivers (`executor::Io`), so an io_uring operation pays one
//! well-predicted branch for the fallback's existence, never a virtual call.
//!
//! On epoll: sockets are registered edge-triggered once and their non-blocking calls retried
//! on readiness; `sleep` is a timer bounding the `epoll_wait` timeout; `Stream::recv_multi`
//! receives on demand into a bounded per-loop pool of the buffer ring's size (an undrained
//! stream stops reading); `File` operations are synchronous `pread`/`pwrite`/`fsync` calls on
//! the loop thread (they block the loop while the host file answers).
//!
//! Codemap:
//! - `runtime`: `Config`, `Runtime` (starts/stops the loop threads), `LoopHandle`.
//! - `executor`: task slab, run queue, cross-thread wakers, injection queue, the run loop;
//!   `spawn_local`, `current`, `yield_now`.
//! - `driver`: one ring per loop, the op slab keyed by `user_data`, `Op` futures.
//! - `bufring`: the loop's provided buffer ring, `RecvBuf`.
//! - `net`: `Listener`, `Stream`, `RecvStream` (multishot receive). `fs`: `File` (host-file
//!   I/O). `time`: `sleep`. `ready`: `ready`, a readiness wait on a caller's descriptor
//!   (io_uring `POLL_ADD`; epoll: a registration for the wait only).
//! - `backend`: `Backend`, `BackendChoice`, `RUMP_IO_BACKEND`, the fallback decision.
//! - `epoll`: the fallback — `Reactor` (sources, timers, eventfd), `io` (operations), `pool`
//!   (receive buffers).
//! - `error`: `SetupError`.
//!
//! **Invariant:** a task's future is polled and dropped only on its loop thread.
//! **Invariant:** every buffer handed to io_uring stays alive until its completion arrives,
//! also when the future that wanted it is dropped.
//! **Invariant:** ops in flight per loop are bounded so the completion queue never overflows.
//! On epoll these hold by construction: the kernel uses a buffer only during the system call
//! it was passed to, and a waiting op is one waker or timer entry owned by its task.
//! **Invariant:** every loop of a runtime runs the same backend, chosen once at start.
//! This crate knows nothing of rump: it is a generic runtime.
//!
//! `Stream` and `Listener` are bound to their loop (`!Send`):
//! ```compile_fail
//! fn is_send<T: Send>() {}
//! is_send::<ring::Stream>();
//! ```
//! ```compile_fail
//! fn is_send<T: Send>() {}
//! is_send::<ring::Listener>();
//! ```
//! and so is every I/O future, also one on a (shareable) `File`: an op belongs to the ring of
//! the thread that started it.
//! ```compile_fail
//! fn is_send<T: Send>(_: &T) {}
//! async fn f(file: &ring::File) {
//!     is_send(&file.sync(false));
//! }
//! ```
//! while `LoopHandle` and `File` may be used from any thread:
//! ```
//! fn is_send_sync<T: Send + Sync>() {}
//! is_send_sync::<ring::LoopHandle>();
//! is_send_sync::<ring::Runtime>();
//! is_send_sync::<ring::File>();
//! ```

mod backend;
mod bufring;
mod driver;
mod epoll;
mod error;
mod executor;
mod fs;
mod net;
mod ready;
mod runtime;
mod time;

pub use backend::{Backend, BackendChoice, BACKEND_ENV};
pub use bufring::RecvBuf;
pub use driver::RingMode;
pub use error::SetupError;
pub use executor::{current, spawn_local, urge, yield_now};
pub use fs::File;
pub use net::{Listener, RecvStream, Stream};
pub use ready::ready;
pub use runtime::{probe_io_uring, ring_mode_name, spin_us_from_env, Config, LoopHandle, Runtime};
pub use time::sleep;

//! `ring`: a per-vCPU runtime of pinned threads, each with its own io_uring and a small
//! single-threaded executor for `!Send` futures, plus sockets and timers on top.
//!
//! Codemap:
//! - `runtime`: `Config`, `Runtime` (starts/stops the loop threads), `LoopHandle`.
//! - `executor`: task slab, run queue, cross-thread wakers, injection queue, the run loop;
//!   `spawn_local`, `current`, `yield_now`.
//! - `driver`: one ring per loop, the op slab keyed by `user_data`, `Op` futures.
//! - `bufring`: the loop's provided buffer ring, `RecvBuf`.
//! - `net`: `Listener`, `Stream`, `RecvStream` (multishot receive). `fs`: `File` (host-file I/O). `time`: `sleep`.
//! - `error`: `SetupError`.
//!
//! **Invariant:** a task's future is polled and dropped only on its loop thread.
//! **Invariant:** every buffer handed to io_uring stays alive until its completion arrives,
//! also when the future that wanted it is dropped.
//! **Invariant:** ops in flight per loop are bounded so the completion queue never overflows.
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
mod runtime;
mod time;

pub use backend::{Backend, BackendChoice, BACKEND_ENV};
pub use bufring::RecvBuf;
pub use driver::RingMode;
pub use error::SetupError;
pub use executor::{current, spawn_local, yield_now};
pub use fs::File;
pub use net::{Listener, RecvStream, Stream};
pub use runtime::{probe_io_uring, ring_mode_name, Config, LoopHandle, Runtime};
pub use time::sleep;

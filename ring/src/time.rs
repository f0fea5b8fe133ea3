//! Timers: `sleep` as an io_uring timeout op (on the epoll backend: a timer entry whose
//! deadline bounds the `epoll_wait` timeout).

use std::time::Duration;

use io_uring::{opcode, squeue, types};

use crate::driver::{Op, OpData};

struct TimeoutData {
    /// Boxed so that its address stays put while the op is in flight.
    ts: Box<types::Timespec>,
}

impl OpData for TimeoutData {
    fn entry(&mut self) -> squeue::Entry {
        opcode::Timeout::new(&*self.ts as *const types::Timespec).build()
    }
}

/// Sleeps for `d` (an io_uring timeout on this loop's ring). Must run on a loop thread.
pub async fn sleep(d: Duration) {
    if crate::executor::on_epoll() {
        return crate::epoll::io::Sleep::new(d).await;
    }
    let _ = Op::new(TimeoutData {
        ts: Box::new(types::Timespec::from(d)),
    })
    .await;
}

//! Timers: `sleep` as an io_uring timeout op.

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
    let _ = Op::new(TimeoutData {
        ts: Box::new(types::Timespec::from(d)),
    })
    .await;
}

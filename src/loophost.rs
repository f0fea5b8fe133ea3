//! `LoopHost`: the kernel's `Host` for the server — `StdHost`'s console, clocks and entropy,
//! with sleeps on the timer of the loop that runs the sleeping syscall.
//!
//! A nanosleep then costs one timeout operation on that loop's ring (or one deadline of the
//! epoll backend's timer list) instead of a trip through the kernel's portable timer thread.
//! A sleep polled off the loops (none today: sleeps come from syscalls) falls back to it.

use std::time::Duration;

use kernel::sync::HostSleep;
use kernel::{Host, StdHost};

/// The server's host: [`StdHost`] plus the loops' timers.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoopHost(StdHost);

impl Host for LoopHost {
    fn console_write(&self, data: &[u8]) {
        self.0.console_write(data)
    }

    fn console_sync(&self, wait: Duration) -> bool {
        self.0.console_sync(wait)
    }

    fn clock_realtime(&self) -> (i64, i64) {
        self.0.clock_realtime()
    }

    fn clock_monotonic(&self) -> (i64, i64) {
        self.0.clock_monotonic()
    }

    fn random(&self, buf: &mut [u8]) {
        self.0.random(buf)
    }

    fn sleep(&self, d: Duration) -> HostSleep {
        match ring::current() {
            Some(_) => Box::pin(ring::sleep(d)),
            None => kernel::sync::std_sleep(d),
        }
    }

    fn spawn(&self, task: kernel::BackgroundTask) -> Result<(), kernel::BackgroundTask> {
        match ring::current() {
            Some(_) => {
                ring::spawn_local(task);
                Ok(())
            }
            None => Err(task),
        }
    }
}

//! The kernel's only door to the host (NetBSD's `rumpuser.h` idea): console, clocks, timers,
//! entropy.
//!
//! Host errno values, when later operations can fail, are translated to NetBSD `Errno` here.

use std::io::{Read, Write};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What the kernel needs from the host. Implemented by [`StdHost`] for the server, and by
/// in-memory or fault-injecting hosts in tests.
pub trait Host: Send + Sync + 'static {
    /// Writes console output (`rumpuser_putchar`) to the server's stdout. Never blocks on
    /// the host: it is called on the loops.
    fn console_write(&self, data: &[u8]);
    /// Waits up to `wait` until console output written so far has reached the host (before
    /// exiting, before the server itself prints). Returns whether it did.
    fn console_sync(&self, wait: Duration) -> bool {
        let _ = wait;
        true
    }
    /// Wall-clock time `(sec, nsec)` since the Unix epoch.
    fn clock_realtime(&self) -> (i64, i64);
    /// A monotonic clock `(sec, nsec)` from an arbitrary origin.
    fn clock_monotonic(&self) -> (i64, i64);
    /// Fills `buf` with random bytes.
    fn random(&self, buf: &mut [u8]);
    /// A future that completes once `d` has passed (`rumpuser_clock_sleep`), polled on the
    /// thread that runs the sleeping syscall. A host with a runtime gives its own timer; the
    /// default is the kernel's portable timer thread ([`crate::sync::std_sleep`]).
    fn sleep(&self, d: Duration) -> crate::sync::HostSleep {
        crate::sync::std_sleep(d)
    }
    /// Runs `task` in the background on the calling thread's event loop (so host I/O it
    /// starts completes there), for kernel work no caller waits for (the buffer cache's
    /// write-behind). Gives the task back when there is no such loop (the default): the
    /// caller then runs it itself.
    fn spawn(&self, task: BackgroundTask) -> Result<(), BackgroundTask> {
        Err(task)
    }
}

/// A kernel task for [`Host::spawn`].
pub type BackgroundTask = std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;

/// The host of a real server: stdout, the system clocks and `/dev/urandom`.
///
/// **The console never blocks a loop.** Output goes into a bounded queue
/// ([`CONSOLE_QUEUE_MAX`] bytes) that one thread, `rump-console`, started at the first
/// console write, writes to file descriptor 1. A stdout that does not take data (a pipe
/// nobody reads, a stopped terminal) then stalls only that thread: once the queue is full,
/// further writes are dropped whole and counted, and the writer puts one line
/// `[rump console: N bytes dropped]` where they were. Console output stays best effort, as
/// NetBSD's `putchar` (a closed stdout loses it).
#[derive(Clone, Copy, Debug, Default)]
pub struct StdHost;

/// Most console bytes waiting for the host's stdout; beyond, writes are dropped and counted.
pub const CONSOLE_QUEUE_MAX: usize = 256 * 1024;

#[derive(Default)]
struct ConsoleState {
    queued: Vec<u8>,
    dropped: u64,
    /// The writer holds bytes taken from the queue.
    writing: bool,
    started: bool,
}

#[derive(Default)]
struct ConsoleQueue {
    state: Mutex<ConsoleState>,
    /// Signalled when there is something to write.
    work: Condvar,
    /// Signalled when the writer has written everything taken.
    idle: Condvar,
}

fn console() -> &'static ConsoleQueue {
    static Q: OnceLock<ConsoleQueue> = OnceLock::new();
    Q.get_or_init(ConsoleQueue::default)
}

impl ConsoleQueue {
    fn lock(&self) -> MutexGuard<'_, ConsoleState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&'static self, data: &[u8]) {
        let mut st = self.lock();
        if !st.started {
            let spawned = std::thread::Builder::new()
                .name("rump-console".into())
                .spawn(move || self.writer());
            // Without a writer thread the output is lost, never written on this thread.
            st.started = spawned.is_ok();
            if !st.started {
                return;
            }
        }
        if st.queued.len() + data.len() > CONSOLE_QUEUE_MAX {
            st.dropped += data.len() as u64;
        } else {
            st.queued.extend_from_slice(data);
        }
        drop(st);
        self.work.notify_one();
    }

    fn writer(&self) {
        let mut spare = Vec::new();
        loop {
            let (mut data, dropped) = {
                let mut st = self.lock();
                while st.queued.is_empty() && st.dropped == 0 {
                    st = self.work.wait(st).unwrap_or_else(|e| e.into_inner());
                }
                st.writing = true;
                let data = std::mem::replace(&mut st.queued, std::mem::take(&mut spare));
                (data, std::mem::take(&mut st.dropped))
            };
            if dropped > 0 {
                data.extend_from_slice(
                    format!("\n[rump console: {dropped} bytes dropped]\n").as_bytes(),
                );
            }
            // Written to a duplicate of fd 1 taken now (the daemon later points fd 1 at
            // /dev/null), without std's `Stdout` lock, which the server's own prints take:
            // they must not wait for a stuck console.
            use std::os::fd::AsFd;
            if let Ok(fd) = std::io::stdout().as_fd().try_clone_to_owned() {
                let _ = std::fs::File::from(fd).write_all(&data);
            }
            data.clear();
            spare = data;
            let mut st = self.lock();
            st.writing = false;
            if st.queued.is_empty() && st.dropped == 0 {
                self.idle.notify_all();
            }
        }
    }

    fn sync(&self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        let mut st = self.lock();
        while st.started && (st.writing || !st.queued.is_empty() || st.dropped > 0) {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            st = self
                .idle
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }
}

impl Host for StdHost {
    fn console_write(&self, data: &[u8]) {
        if !data.is_empty() {
            console().push(data);
        }
    }

    fn console_sync(&self, wait: Duration) -> bool {
        console().sync(wait)
    }

    fn clock_realtime(&self) -> (i64, i64) {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => (d.as_secs() as i64, i64::from(d.subsec_nanos())),
            Err(e) => {
                let d = e.duration();
                let (s, n) = (d.as_secs() as i64, i64::from(d.subsec_nanos()));
                if n == 0 {
                    (-s, 0)
                } else {
                    (-s - 1, 1_000_000_000 - n)
                }
            }
        }
    }

    fn clock_monotonic(&self) -> (i64, i64) {
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        let d = ORIGIN.get_or_init(Instant::now).elapsed();
        (d.as_secs() as i64, i64::from(d.subsec_nanos()))
    }

    fn random(&self, buf: &mut [u8]) {
        static URANDOM: OnceLock<Option<std::fs::File>> = OnceLock::new();
        let dev = URANDOM.get_or_init(|| std::fs::File::open("/dev/urandom").ok());
        if let Some(mut f) = dev.as_ref() {
            if f.read_exact(buf).is_ok() {
                return;
            }
        }
        fallback_random(buf);
    }
}

/// Random bytes from std's randomly keyed SipHash, for a host without `/dev/urandom`.
fn fallback_random(buf: &mut [u8]) {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let state = RandomState::new();
    for (i, chunk) in buf.chunks_mut(8).enumerate() {
        let mut h = state.build_hasher();
        h.write_usize(i);
        chunk.copy_from_slice(&h.finish().to_le_bytes()[..chunk.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn std_host_clocks_and_random() {
        let h = StdHost;
        let (s, n) = h.clock_realtime();
        assert!(s > 1_600_000_000 && (0..1_000_000_000).contains(&n));
        let a = h.clock_monotonic();
        let b = h.clock_monotonic();
        assert!(b >= a);
        let mut x = [0u8; 32];
        h.random(&mut x);
        let mut y = [0u8; 32];
        fallback_random(&mut y);
        assert!(x.iter().any(|&v| v != 0) && y.iter().any(|&v| v != 0));
    }

    /// A full queue drops whole writes and counts them; the writer reports the count.
    #[test]
    fn console_queue_is_bounded() {
        let q: &'static ConsoleQueue = Box::leak(Box::default());
        {
            // No writer: fill by hand.
            let mut st = q.lock();
            st.started = true;
            st.writing = true;
        }
        q.push(&vec![b'a'; CONSOLE_QUEUE_MAX - 10]);
        q.push(b"0123456789");
        q.push(b"x");
        let st = q.lock();
        assert_eq!(st.queued.len(), CONSOLE_QUEUE_MAX);
        assert_eq!(st.dropped, 1);
        drop(st);
        assert!(!q.sync(Duration::from_millis(10)), "nothing drains it");
    }
}

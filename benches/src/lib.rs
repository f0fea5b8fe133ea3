//! Shared pieces of the micro-benchmarks: a timing loop (no external harness, so it builds
//! offline) and an in-memory `UserMem` with a `block_on` for driving `Kernel::syscall`.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// How long each benchmark is timed: `BENCH_TIME_MS` (default 500 ms). When run without
/// `--bench` (e.g. `cargo test --benches`) every benchmark runs once, untimed.
pub struct Bencher {
    time: Duration,
    quick: bool,
}

impl Default for Bencher {
    fn default() -> Self {
        Self::new()
    }
}

impl Bencher {
    /// Reads the settings from the environment and the command line.
    pub fn new() -> Bencher {
        let ms = std::env::var("BENCH_TIME_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(500);
        Bencher {
            time: Duration::from_millis(ms),
            quick: !std::env::args().any(|a| a == "--bench"),
        }
    }

    /// Times `f` and prints `name: N ns/iter (M iter/s)`; returns ns per iteration.
    pub fn run<R>(&self, name: &str, mut f: impl FnMut() -> R) -> f64 {
        if self.quick {
            black_box(f());
            println!("{name}: ran once (pass --bench to time)");
            return 0.0;
        }
        // Warm up and size a batch so the clock is read rarely.
        let mut batch = 1u64;
        loop {
            let t = Instant::now();
            for _ in 0..batch {
                black_box(f());
            }
            if t.elapsed() > Duration::from_millis(10) {
                break;
            }
            batch *= 2;
        }
        let mut iters = 0u64;
        let start = Instant::now();
        while start.elapsed() < self.time {
            for _ in 0..batch {
                black_box(f());
            }
            iters += batch;
        }
        let ns = start.elapsed().as_nanos() as f64 / iters as f64;
        println!("{name:<44} {ns:>10.1} ns/iter {:>14.0} iter/s", 1e9 / ns);
        ns
    }
}

/// Polls a future that never waits (e.g. a syscall with no copy request) to completion.
///
/// # Panics
/// If the future returns `Pending` 1000 times in a row (it waits on something real).
pub fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let waker = Waker::from(Arc::new(NoWake));
    let mut cx = Context::from_waker(&waker);
    for _ in 0..1000 {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
    panic!("benchmarked future does not complete without waiting")
}

/// A waker that does nothing (`Waker::noop` needs Rust 1.85; the MSRV is 1.80).
struct NoWake;

impl Wake for NoWake {
    fn wake(self: Arc<Self>) {}
}

/// Client memory held in the process: every copyin returns `len` zero bytes (strings are
/// `/tmp\0`); copyouts are discarded.
pub struct NullMem;

impl kernel::UserMem for NullMem {
    async fn copyin(&self, _addr: u64, len: usize) -> kernel::Result<Vec<u8>> {
        Ok(vec![0; len])
    }
    async fn copyinstr(&self, _addr: u64, _maxlen: usize) -> kernel::Result<Vec<u8>> {
        Ok(b"/tmp\0".to_vec())
    }
    async fn copyout(&self, _addr: u64, _data: &[u8]) -> kernel::Result<()> {
        Ok(())
    }
    fn raise(&self, _signo: u32) {}
}

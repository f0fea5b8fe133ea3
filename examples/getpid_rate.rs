//! Measures getpid calls per second over one connection, one call at a time.
//!
//! `cargo run --release --example getpid_rate -- unix:///tmp/rump.sock [seconds]`
//! (the load generator with percentiles and baselines comes with `loadtest/`).

use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| {
        eprintln!("usage: getpid_rate URL [seconds]");
        std::process::exit(1)
    });
    let secs: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    let mut c = client::Client::connect(&url).unwrap_or_else(|e| {
        eprintln!("getpid_rate: connect {url}: {e}");
        std::process::exit(1)
    });
    let end = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let mut calls = 0u64;
    while Instant::now() < end {
        for _ in 0..256 {
            c.getpid().expect("getpid");
        }
        calls += 256;
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "{calls} getpid calls in {elapsed:.2} s: {:.0} calls/s, {:.2} us/call",
        calls as f64 / elapsed,
        elapsed * 1e6 / calls as f64
    );
}

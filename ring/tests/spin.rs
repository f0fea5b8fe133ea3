//! Busy-polling loops (`Config::spin_us`): the loop still serves sockets, timers and
//! cross-thread wakes while it spins instead of sleeping, and an idle loop stops spinning
//! (uses no CPU). The speed it buys is measured in docs/benchmarks.md, not asserted here.

mod common;

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::recv;

const SPIN_US: u32 = 50;

fn start_spinning(loops: usize) -> Option<ring::Runtime> {
    if let Err(e) = ring::probe_io_uring() {
        eprintln!("skipping: {e}");
        return None;
    }
    let cfg = ring::Config {
        loops,
        pin: false,
        ring_entries: 64,
        backend: Some(ring::BackendChoice::IoUring),
        spin_us: SPIN_US,
        ..Default::default()
    };
    Some(ring::Runtime::start(&cfg).expect("runtime start after a successful probe"))
}

/// An echo task on the loop: every byte received is sent back (lazy sends, as the server's).
fn spawn_echo(rt: &ring::Runtime, fd: OwnedFd) {
    rt.handles()[0].spawn(move || async move {
        let s = ring::Stream::from_fd(fd);
        let mut rx = s.recv_multi();
        while let Ok(Some(b)) = rx.next().await {
            let (r, _) = s.send_all_lazy(b.to_vec()).await;
            if r.is_err() {
                break;
            }
        }
    });
}

/// Ping-pong from a plain thread, with pauses longer than the spin between some rounds so
/// the loop goes from spinning to sleeping and back: every answer arrives, in order.
#[test]
fn a_spinning_loop_answers_every_ping_also_after_sleeping() {
    let Some(rt) = start_spinning(1) else { return };
    let (a, b) = UnixStream::pair().unwrap();
    spawn_echo(&rt, b.into());
    let mut a = a;
    a.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for i in 0u32..2000 {
        if i % 250 == 0 {
            std::thread::sleep(Duration::from_millis(3)); // > spin: the loop sleeps
        }
        a.write_all(&i.to_le_bytes()).unwrap();
        let mut got = [0u8; 4];
        a.read_exact(&mut got).unwrap();
        assert_eq!(u32::from_le_bytes(got), i);
    }
    rt.shutdown();
}

/// Timers and wakes from another thread end a spin or a sleep as before.
#[test]
fn timers_and_remote_wakes_reach_a_spinning_loop() {
    let Some(rt) = start_spinning(2) else { return };
    let (tx, rx) = mpsc::channel();
    for round in 0..50u32 {
        let tx = tx.clone();
        let h = &rt.handles()[(round % 2) as usize];
        let t0 = Instant::now();
        h.spawn(move || async move {
            ring::sleep(Duration::from_micros(200)).await;
            tx.send((round, t0.elapsed())).unwrap();
        });
        let (r, waited) = recv(&rx);
        assert_eq!(r, round);
        assert!(waited >= Duration::from_micros(200), "{waited:?}");
    }
    rt.shutdown();
}

/// CPU time of thread `tid` of this process, from /proc (clock ticks).
fn thread_cpu_ticks(tid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
    // Fields after the command's closing parenthesis: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// After a burst of traffic the loop spins at most once more and then sleeps: over half a
/// second of idleness it uses (almost) no CPU. A loop that kept spinning would use all of it.
#[test]
fn an_idle_loop_stops_spinning() {
    let Some(rt) = start_spinning(1) else { return };
    let (a, b) = UnixStream::pair().unwrap();
    spawn_echo(&rt, b.into());
    let (tx, rx) = mpsc::channel();
    rt.handles()[0].spawn(move || async move {
        // SAFETY: gettid has no arguments and cannot fail.
        tx.send(unsafe { libc::gettid() }).unwrap();
    });
    let tid = recv(&rx);
    let mut a = a;
    for i in 0u32..5000 {
        a.write_all(&i.to_le_bytes()).unwrap();
        let mut got = [0u8; 4];
        a.read_exact(&mut got).unwrap();
    }
    std::thread::sleep(Duration::from_millis(20));
    let before = thread_cpu_ticks(tid);
    std::thread::sleep(Duration::from_millis(500));
    let used = thread_cpu_ticks(tid) - before;
    // Clock ticks are 10 ms: a spinning loop would show about 50.
    assert!(used <= 5, "the idle loop used {used} ticks in 500 ms");
    rt.shutdown();
}

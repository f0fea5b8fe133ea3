//! Scale of the TCP/IP faction (issue 16 §7): a kernel's shmif interfaces share one inotify
//! instance (a host allows 128 per user by default, and a chain of 64 servers has 126
//! interfaces: benches/netinet-chain.sh), and an interface leaving a bus it shares with
//! another interface of the same kernel does not stop that one's wake-ups.

mod common;
#[path = "netinet/peer.rs"]
mod peer;

use std::net::Ipv4Addr;
use std::time::Instant;

use common::{InDir, TempDir};
use peer::*;

const SIOCIFDESTROY: u32 = 0x8090_6979;

/// A server with netinet and shmif started in `dir` (where relative bus paths land).
fn start(dir: &TempDir, name: &str) -> InDir {
    let libs = [
        "-lrumpnet",
        "-lrumpnet_net",
        "-lrumpnet_netinet",
        "-lrumpnet_shmif",
    ];
    InDir::start(dir, name, &libs)
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// The inotify instances process `pid` holds.
fn inotify_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|l| l.to_string_lossy() == "anon_inode:inotify")
        .count()
}

#[test]
fn a_kernel_watches_all_its_buses_with_one_inotify_instance() {
    let dir = TempDir::new("netinet-scale");
    let a = start(&dir, "a.sock");
    let b = start(&dir, "b.sock");
    let mut ca = common::connect_retry(&a.url, "scale");
    let mut cb = common::connect_retry(&b.url, "scale");
    assert_eq!(inotify_fds(a.pid()), 0, "no bus, no watch");
    for i in 0..5u8 {
        let name = format!("shmif{i}");
        ifconfig_shmif(
            &mut ca,
            &name,
            &format!("bus{i}"),
            Ipv4Addr::new(10, 0, i, 1),
        )
        .unwrap();
    }
    // Two interfaces of `a` on one bus, `b` on it too (8 addresses: the most a kernel has).
    ifconfig_shmif(&mut ca, "shmif6", "busS", ip("10.1.5.1")).unwrap();
    ifconfig_shmif(&mut ca, "shmif7", "busS", ip("10.1.6.1")).unwrap();
    ifconfig_shmif(&mut cb, "shmif0", "busS", ip("10.1.5.2")).unwrap();
    assert_eq!(inotify_fds(a.pid()), 1, "7 interfaces, one instance");
    assert_eq!(ping(&mut ca, ip("10.1.5.2"), 2).unwrap().0, 2);

    // shmif7 leaves busS: shmif6 is still woken by b's frames (the watch on busS stays).
    let s = ca.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    let mut r = vec![0u8; 144];
    r[..6].copy_from_slice(b"shmif7");
    ioctl(&mut ca, s, SIOCIFDESTROY, &mut r, &[]).unwrap();
    ca.close(s).unwrap();
    let t = Instant::now();
    let n = 10;
    assert_eq!(ping(&mut ca, ip("10.1.5.2"), n).unwrap().0, n);
    let per_ms = t.elapsed().as_secs_f64() * 1e3 / f64::from(n);
    // A reply noticed only when the softint wakes on its own (smoltcp's timer, at most
    // 200 ms) takes ~60 ms or more per echo here; woken by the bus, ~1 ms.
    assert!(
        per_ms < 25.0,
        "{per_ms:.1} ms per echo: the bus's wake-ups were lost"
    );
    assert_eq!(inotify_fds(a.pid()), 1);
}

//! NetBSD as the oracle for neighbour unreachability detection (issue 16, nd6.c): the
//! probe of `tests/oracle/nud.rs` was run against three of NetBSD's own rump_server 7.99
//! on one bus, started in a directory of their own (`rump_server -lrumpnet -lrumpnet_net
//! -lrumpnet_netinet -lrumpnet_netinet6 -lrumpnet_shmif URL`, then `cargo run --example
//! oracle_nud -- URL_A URL_B URL_C DIR > tests/oracle/nud.netbsd`): A's neighbour entries
//! for a live and a halted neighbour go through NetBSD's states with NetBSD's timers, and
//! the unicast probes on the bus are NetBSD's. Three of ours answer the same.

mod common;

#[path = "oracle/nud.rs"]
mod nud;
#[path = "netinet/peer.rs"]
mod peer;
#[path = "oracle/transcript.rs"]
mod transcript;

use common::{InDir, TempDir};

/// NetBSD's transcript.
const NETBSD: &str = include_str!("oracle/nud.netbsd");

const LIBS: &[&str] = common::NETINET6;

#[test]
fn unreachability_detection_as_netbsd() {
    let dir = TempDir::new("oracle-nud");
    let a = InDir::start(&dir, "a.sock", LIBS);
    let b = InDir::start(&dir, "b.sock", LIBS);
    let c = InDir::start(&dir, "c.sock", LIBS);
    let curl = c.url.clone();
    let ours = nud::run([&a.url, &b.url, &c.url], dir.path(), || nud::halt(&curl));
    drop((a, b, c));
    assert!(
        ours.0.iter().any(|l| l.contains("probe -> gone")),
        "{:#?}",
        ours.0
    );
    transcript::assert_as_netbsd(&ours.0, NETBSD, &[]);
}

//! NetBSD as the oracle for fragmentation, MTU and MSS (issue 16, netinet/src/frag.rs):
//! the probe of `tests/oracle/frag.rs` was run against NetBSD's own rump_server 7.99,
//! started in a directory of its own (`rump_server -lrumpnet -lrumpnet_net
//! -lrumpnet_netinet -lrumpnet_netinet6 -lrumpnet_shmif URL`, then `cargo run --example
//! oracle_frag -- URL > tests/oracle/frag.netbsd`): the knobs and their refusals,
//! SIOCSIFMTU's ranges on shmif and lo0, the largest UDP datagram, DF with IP_HDRINCL
//! beyond the MTU, datagrams fragmented and reassembled over lo0. Ours answers every step
//! as NetBSD did.

mod common;

#[path = "oracle/frag.rs"]
mod frag;
#[path = "netinet/peer.rs"]
mod peer;
#[path = "oracle/sysctl.rs"]
#[allow(dead_code)]
mod sysctl;
#[path = "oracle/transcript.rs"]
mod transcript;

use common::{InDir, TempDir};

/// NetBSD's transcript.
const NETBSD: &str = include_str!("oracle/frag.netbsd");

/// Steps where our answer differs from NetBSD's on purpose: none.
const DIFFERENCES: &[(&str, &str, &str)] = &[];

#[test]
fn fragmentation_and_mtu_answer_as_netbsd() {
    let dir = TempDir::new("oracle-frag");
    let srv = InDir::start(&dir, "s.sock", common::NETINET6);
    let ours = frag::run(&srv.url);
    drop(srv);
    assert!(dir.path().join("oracle-frag-bus").exists());
    transcript::assert_as_netbsd(&ours.0, NETBSD, DIFFERENCES);
}

//! NetBSD as the oracle for IP multicast (issue 16): the probe of `tests/oracle/mcast.rs`
//! was run against NetBSD's own rump_server 7.99 started in a directory of its own
//! (`rump_server -lrumpnet -lrumpnet_net -lrumpnet_netinet -lrumpnet_netinet6
//! -lrumpnet_shmif URL`, then `cargo run --example oracle_mcast -- URL DIR >
//! tests/oracle/mcast.netbsd`): the multicast socket options of AF_INET and AF_INET6 UDP
//! sockets with their getsockopt answers and errno, datagrams to a group looped back (or
//! not), and the IGMP/MLD reports, leaves and dones and UDP frames the server put on its
//! bus. Ours answers every step as NetBSD did.

mod common;

#[path = "oracle/mcast.rs"]
mod mcast;
#[path = "netinet/peer.rs"]
mod peer;
#[path = "oracle/transcript.rs"]
mod transcript;

use common::{InDir, TempDir};

/// NetBSD's transcript.
const NETBSD: &str = include_str!("oracle/mcast.netbsd");

#[test]
fn multicast_answers_as_netbsd() {
    let dir = TempDir::new("oracle-mcast");
    let srv = InDir::start(&dir, "s.sock", common::NETINET6);
    let ours = mcast::run(&srv.url, dir.path());
    drop(srv);
    // The probe's bus summary is part of the transcript: it must have seen reports.
    assert!(ours.0.iter().any(|l| l.starts_with("bus: IGMP type 0x16")));
    assert!(ours.0.iter().any(|l| l.starts_with("bus: MLD type 131")));
    transcript::assert_as_netbsd(&ours.0, NETBSD, &[]);
}

//! NetBSD as the oracle for IPv6 packet options (RFC 3542, issue 16): the probe of
//! `tests/oracle/pktinfo.rs` was run against NetBSD's own rump_server 7.99 started in a
//! directory of its own (`rump_server -lrumpnet -lrumpnet_net -lrumpnet_netinet
//! -lrumpnet_netinet6 -lrumpnet_shmif URL`, then `cargo run --example oracle_pktinfo --
//! URL DIR > tests/oracle/pktinfo.netbsd`): the sticky `IPV6_PKTINFO` option (errno,
//! getsockopt, the source a connect takes from it, link-local zones in sockaddrs) and
//! `IPV6_PKTINFO`/`IPV6_HOPLIMIT` control messages of a raw send (`ping6 -I shmif0 -h 7
//! ff02::1`: the frame on the bus, the server's own answer). Ours answers every step as
//! NetBSD did.

mod common;

#[path = "netinet/peer.rs"]
mod peer;
#[path = "oracle/pktinfo.rs"]
mod pktinfo;
#[path = "oracle/transcript.rs"]
mod transcript;

use common::{InDir, TempDir};

/// NetBSD's transcript.
const NETBSD: &str = include_str!("oracle/pktinfo.netbsd");

#[test]
fn packet_options_answer_as_netbsd() {
    let dir = TempDir::new("oracle-pktinfo");
    let srv = InDir::start(&dir, "s.sock", common::NETINET6);
    let ours = pktinfo::run(&srv.url, dir.path());
    drop(srv);
    // The probe's bus frames are part of the transcript: the echo request must be there.
    assert!(ours
        .0
        .iter()
        .any(|l| l.starts_with("bus: echo request to ff02::1")));
    transcript::assert_as_netbsd(&ours.0, NETBSD, &[]);
}

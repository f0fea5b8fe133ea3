//! NetBSD as the oracle for router advertisements (issue 16, nd6_rtr.c): the probe of
//! `tests/oracle/rtadv.rs` was run against NetBSD's own rump_server 7.99 started in a
//! directory of its own (`rump_server -lrumpnet -lrumpnet_net -lrumpnet_netinet
//! -lrumpnet_netinet6 -lrumpnet_shmif URL`, then `cargo run --example oracle_rtadv -- URL
//! DIR > tests/oracle/rtadv.netbsd`): `net.inet6.ip6.accept_rtadv` 0 by default and an
//! advertisement ignored then; on, an address from the prefix (autoconf), the default
//! route through the router, the router a neighbour; lifetime 0 takes the route away.
//! Ours answers every step as NetBSD did.

mod common;

#[path = "netinet/peer.rs"]
mod peer;
#[path = "oracle/rtadv.rs"]
mod rtadv;
#[path = "oracle/transcript.rs"]
mod transcript;

use common::{InDir, TempDir};

/// NetBSD's transcript.
const NETBSD: &str = include_str!("oracle/rtadv.netbsd");

#[test]
fn router_advertisements_as_netbsd() {
    let dir = TempDir::new("oracle-rtadv");
    let srv = InDir::start(&dir, "s.sock", common::NETINET6);
    let ours = rtadv::run(&srv.url, dir.path());
    drop(srv);
    assert!(ours
        .0
        .iter()
        .any(|l| l == "default route: ok via fe80::99 flags 0x3"));
    transcript::assert_as_netbsd(&ours.0, NETBSD, &[]);
}

//! NetBSD's tests/net on our servers: TCP through a forwarder (t_forwarding.sh's TCP leg):
//! an echo of 100000 bytes each way and ECONNREFUSED from a closed port. The steps of
//! `tests/oracle/netbsd_net.rs`, each answer as NetBSD's rump_server gave it
//! (`tests/oracle/netbsd-net.netbsd`, recorded by `cargo run --example oracle_netbsd_net --
//! NETBSD_RUMP_SERVER`).

mod common;

#[path = "oracle/netbsd_net.rs"]
mod netbsd_net;
#[path = "netinet/peer.rs"]
mod peer;
#[path = "oracle/transcript.rs"]
mod transcript;

#[path = "netinet/replay.rs"]
mod replay;

#[test]
fn tcp_through_a_router_as_netbsd() {
    replay::replay("tcp");
}

//! NetBSD's tests/net on our servers: t_forwarding.sh and t_ping.sh (ping through a
//! forwarder both ways with TTL 254, TTL 1 dying at the forwarder with time exceeded,
//! net.inet.ip.forwarding off and on again). The steps of `tests/oracle/netbsd_net.rs`,
//! each answer as NetBSD's rump_server gave it (`tests/oracle/netbsd-net.netbsd`, recorded
//! by `cargo run --example oracle_netbsd_net -- NETBSD_RUMP_SERVER`).

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
fn forwarding_through_a_router_as_netbsd() {
    replay::replay("forwarding");
}

//! NetBSD's tests/net/icmp/t_ping2.sh (basic: a ping to the neighbour and to ourselves) and
//! t_ping.c's pingsize (echoes of 0 to 4000 bytes of data to the neighbour and through a
//! forwarder) on our servers. The steps of `tests/oracle/netbsd_net.rs`, each answer as
//! NetBSD's rump_server gave it (`tests/oracle/netbsd-net.netbsd`, recorded by `cargo run
//! --example oracle_netbsd_net -- NETBSD_RUMP_SERVER`).

mod common;

#[path = "oracle/netbsd_net.rs"]
mod netbsd_net;
#[path = "netinet/peer.rs"]
mod peer;
#[path = "netinet/replay.rs"]
mod replay;
#[path = "oracle/transcript.rs"]
mod transcript;

#[test]
fn t_ping2_basic_and_pingsize_as_netbsd() {
    // Echoes past one Ethernet frame (1473 and 4000 bytes) are fragmented and reassembled
    // as NetBSD's: no difference is listed.
    replay::replay_with("ping", &[]);
}

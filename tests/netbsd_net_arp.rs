//! NetBSD's tests/net on our servers: t_arp.sh arp_cache_expiration's first half (the cache
//! after a ping: the neighbour dynamic, our own address permanent, an address nobody has
//! incomplete on the forwarder). The steps of `tests/oracle/netbsd_net.rs`, each answer as
//! NetBSD's rump_server gave it (`tests/oracle/netbsd-net.netbsd`, recorded by `cargo run
//! --example oracle_netbsd_net -- NETBSD_RUMP_SERVER`).

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
fn arp_cache_after_ping_as_netbsd() {
    replay::replay("arp");
}

/// t_arp.sh arp_command and arp_cache_overwriting: `arp -s` (static and `temp`), `arp -d`
/// (ENOENT the second time), `arp -d -a` (our own address's entry included), EEXIST over a
/// static entry, a static entry over a dynamic or a temporary one.
#[test]
fn arp_command_and_cache_overwriting_as_netbsd() {
    replay::replay("arp_command");
}

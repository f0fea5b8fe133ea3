//! NetBSD's tests/net/route (t_route.sh route_command_get, route_command_add,
//! route_non_subnet_gateway; t_flags.sh route_flags_lo, _connected, _default_gateway,
//! _static, _blackhole, _reject; t_change.sh) on our servers: the steps of
//! `tests/oracle/netbsd_net.rs` (routing-socket RTM_ADD/GET/DELETE/CHANGE as route(8)
//! writes them, the NET_RT_DUMP table, pings), each answer as NetBSD's rump_server gave it
//! (`tests/oracle/netbsd-net.netbsd`, recorded by `cargo run --example oracle_netbsd_net
//! -- NETBSD_RUMP_SERVER`).

mod common;

#[path = "oracle/netbsd_net.rs"]
mod netbsd_net;
#[path = "netinet/peer.rs"]
mod peer;
#[path = "oracle/transcript.rs"]
mod transcript;

#[path = "netinet/replay.rs"]
mod replay;

use replay::replay;

/// t_route.sh route_command_get, t_flags.sh (lo, connected, default_gateway, static,
/// blackhole, reject) and t_change.sh.
#[test]
fn route_get_flags_blackhole_reject_and_change_as_netbsd() {
    replay("route");
}

/// t_route.sh route_command_add and route_non_subnet_gateway.
#[test]
fn route_command_add_and_non_subnet_gateway_as_netbsd() {
    replay("route_add");
}

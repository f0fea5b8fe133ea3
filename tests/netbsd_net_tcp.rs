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

#[path = "oracle/netbsd_tcp.rs"]
mod netbsd_tcp;

/// t_tcp.c's ten cases over lo0 (accept keeps the listener's O_NONBLOCK, paccept with 0
/// clears it, with SOCK_NONBLOCK sets it, fcntl clears it; EINPROGRESS then EISCONN; 4→4,
/// 6→6 and 4→6 with IPV6_V6ONLY off), recorded from NetBSD's rump_server
/// (`cargo run --example oracle_netbsd_tcp -- URL > tests/oracle/netbsd-tcp.netbsd`).
#[test]
fn t_tcp_accept_nonblock_cases_as_netbsd() {
    let dir = common::TempDir::new("netbsd-t-tcp");
    let srv = common::InDir::start(
        &dir,
        "s.sock",
        &[
            "-lrumpnet",
            "-lrumpnet_net",
            "-lrumpnet_netinet",
            "-lrumpnet_netinet6",
        ],
    );
    let ours = netbsd_tcp::run(&srv.url);
    transcript::assert_as_netbsd(&ours.0, include_str!("oracle/netbsd-tcp.netbsd"), &[]);
}

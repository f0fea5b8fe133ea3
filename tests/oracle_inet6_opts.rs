//! IPv6 socket options and IPV6_V6ONLY as NetBSD answers them: the probe of
//! `tests/oracle/inet6_opts.rs` was run against NetBSD's own rump_server (`rump_server
//! -lrumpnet -lrumpnet_net -lrumpnet_netinet -lrumpnet_netinet6 URL`, then `cargo run
//! --example oracle_inet6_opts -- URL > tests/oracle/inet6-opts.netbsd`): the knob
//! `net.inet6.ip6.v6only` (1, read-write, what new AF_INET6 sockets start with),
//! IPV6_V6ONLY only before bind (EINVAL after), EINVAL for a v4-mapped bind, connect or
//! sendto on an IPv6-only socket, NetBSD's EADDRINUSE between AF_INET and AF_INET6 binds
//! on one port, TCP listeners and UDP sockets on `::` that take IPv4 peers (v4-mapped)
//! only without IPV6_V6ONLY, an AF_INET listener preferred for IPv4 peers, and the
//! `ip6_ctloutput` options ping6 -v/-h set (IPV6_UNICAST_HOPS, IPV6_RECVRTHDR,
//! IPV6_RECVHOPOPTS, IPV6_RECVDSTOPTS, IPV6_RECVRTHDRDSTOPTS) on raw, UDP and TCP sockets.

mod common;

#[path = "oracle/inet6_opts.rs"]
mod inet6_opts;
#[path = "oracle/transcript.rs"]
mod transcript;

use common::{InDir, TempDir};

/// NetBSD's transcript.
const NETBSD: &str = include_str!("oracle/inet6-opts.netbsd");

const LIBS: &[&str] = &[
    "-lrumpnet",
    "-lrumpnet_net",
    "-lrumpnet_netinet",
    "-lrumpnet_netinet6",
];

#[test]
fn ipv6_options_and_v6only_answer_as_netbsd() {
    let dir = TempDir::new("inet6-opts");
    let srv = InDir::start(&dir, "s.sock", LIBS);
    let ours = inet6_opts::run(&srv.url);
    transcript::assert_as_netbsd(&ours.0, NETBSD, &[]);
}

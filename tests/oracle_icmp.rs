//! NetBSD as the oracle for ICMP and ICMPv6 errors (issue 16): the probe of
//! `tests/oracle/icmp.rs` — two hosts of its own on the server's shmif bus, writing frames
//! and reading the answers — was run against NetBSD's own rump_server 7.99, started in a
//! directory of its own (`rump_server -lrumpnet -lrumpnet_net -lrumpnet_netinet
//! -lrumpnet_netinet6 -lrumpnet_shmif URL`, then `cargo run --example oracle_icmp -- URL
//! DIR > tests/oracle/icmp.netbsd`): which errors the server makes, byte for byte but the
//! IP id and header checksum (port and protocol unreachable, next header, time exceeded,
//! net/host/no route/address unreachable, redirects; none for a link broadcast, a bad
//! checksum, an ICMP error, a non-first fragment, a blackhole, an unanswerable source;
//! the rate limit), and what it does with the errors it receives (connected UDP sockets'
//! errno over IPv4 and IPv6, a raw socket's copies, redirects into the routing table and
//! onto routing sockets, a TCP connection attempt's errno). Ours answers every step as
//! NetBSD did.

mod common;

#[path = "oracle/icmp.rs"]
mod icmp;
#[path = "netinet/peer.rs"]
mod peer;
#[path = "oracle/sysctl.rs"]
#[allow(dead_code)]
mod sysctl;
#[path = "oracle/transcript.rs"]
mod transcript;

use common::{InDir, TempDir};

/// NetBSD's transcript.
const NETBSD: &str = include_str!("oracle/icmp.netbsd");

/// Steps where our answer differs from NetBSD's on purpose: none.
const DIFFERENCES: &[(&str, &str, &str)] = &[];

#[test]
fn icmp_errors_made_and_taken_as_netbsd() {
    let dir = TempDir::new("oracle-icmp");
    let srv = InDir::start(&dir, "s.sock", common::NETINET6);
    let ours = icmp::run(&srv.url, dir.path());
    drop(srv);
    transcript::assert_as_netbsd(&ours.0, NETBSD, DIFFERENCES);
}

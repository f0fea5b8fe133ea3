//! NetBSD as the oracle for netinet6 (issue 16): the probe of `tests/oracle/inet6.rs` was
//! run against NetBSD's own rump_server 7.99, started in a directory of its own
//! (`rump_server -lrumpnet -lrumpnet_net -lrumpnet_netinet -lrumpnet_netinet6
//! -lrumpnet_shmif URL`, then `cargo run --example oracle_inet6 -- URL >
//! tests/oracle/inet6.netbsd`): the in6 ioctls ifconfig and ndp make and their errno, the
//! link-local address an interface gets when it comes up (as `NET_RT_IFLIST` shows it),
//! the neighbour table `ndp -a` reads, `net.inet6.ip6.forwarding`, a connected UDP
//! socket's source address and the raw ICMPv6 socket options ping6 sets. Ours answers
//! every step as NetBSD did (a multicast interface address included).

mod common;

#[path = "oracle/inet6.rs"]
mod inet6;
#[path = "netinet/peer.rs"]
mod peer;
#[path = "oracle/sysctl.rs"]
#[allow(dead_code)]
mod sysctl;
#[path = "oracle/transcript.rs"]
mod transcript;

use common::{InDir, TempDir};

/// NetBSD's transcript.
const NETBSD: &str = include_str!("oracle/inet6.netbsd");

#[test]
fn inet6_answers_as_netbsd() {
    // The probe's bus (`oracle6-bus`, relative) lands in the server's directory.
    let dir = TempDir::new("oracle-inet6");
    let srv = InDir::start(&dir, "s.sock", common::NETINET6);
    let ours = inet6::run(&srv.url);
    drop(srv);
    assert!(dir.path().join("oracle6-bus").exists());
    transcript::assert_as_netbsd(&ours.0, NETBSD, &[]);
}

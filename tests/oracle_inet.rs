//! NetBSD as the oracle for the TCP/IP faction (issue 16): the probe of
//! `tests/oracle/inet.rs` was run against NetBSD's own rump_server, started in a directory
//! of its own (`rump_server -lrumpnet -lrumpnet_net -lrumpnet_netinet -lrumpnet_shmif URL`,
//! then `cargo run --example oracle_inet -- URL > tests/oracle/inet.netbsd`): the interface
//! ioctls' answers and errno (ifconfig's), the `NET_RT_IFLIST` message shapes getifaddrs
//! reads, the `net.inet` knobs, and the inet sockets' defaults and errno. Ours answers
//! every step as NetBSD did.

mod common;

#[path = "oracle/inet.rs"]
mod inet;
#[path = "netinet/peer.rs"]
mod peer;
#[path = "oracle/sysctl.rs"]
#[allow(dead_code)]
mod sysctl;
#[path = "oracle/transcript.rs"]
mod transcript;

use common::{InDir, TempDir};

/// NetBSD's transcript.
const NETBSD: &str = include_str!("oracle/inet.netbsd");

/// Steps where our answer differs from NetBSD's on purpose: none.
const DIFFERENCES: &[(&str, &str, &str)] = &[];

#[test]
fn inet_answers_as_netbsd() {
    // The probe's bus (`oracle-bus`, relative) lands in the server's directory.
    let dir = TempDir::new("oracle-inet");
    let srv = InDir::start(
        &dir,
        "s.sock",
        &[
            "-lrumpnet",
            "-lrumpnet_net",
            "-lrumpnet_netinet",
            "-lrumpnet_shmif",
        ],
    );
    let ours = inet::run(&srv.url);
    drop(srv);
    assert!(dir.path().join("oracle-bus").exists());
    transcript::assert_as_netbsd(&ours.0, NETBSD, DIFFERENCES);
}

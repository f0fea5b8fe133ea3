//! NetBSD as the oracle for sockin (issue 15): the probe of `tests/oracle/sockin.rs` was run
//! against NetBSD's own rump_server (`rump_server -lrumpnet -lrumpnet_net -lrumpnet_sockin
//! URL`, then `cargo run --example oracle_sockin -- URL > tests/oracle/sockin.netbsd`), and
//! ours must answer every step as NetBSD did, except where listed in `DIFFERENCES`. Ours
//! runs with `RUMP_SOCKIN_ALLOW` widened by the one documentation address the probe binds
//! (192.0.2.1, which the host does not have: `EADDRNOTAVAIL` from the host, as NetBSD's),
//! since the default policy would answer `EACCES` before asking the host.

mod common;

#[path = "oracle/sockin.rs"]
mod sockin;
#[path = "oracle/transcript.rs"]
mod transcript;

use common::Server;

const NETBSD: &str = include_str!("oracle/sockin.netbsd");

/// Why protocol-level reads differ.
const GETOPT: &str = "NetBSD's sockin_ctloutput calls the host's setsockopt for PRCO_GETOPT \
                      too (with the zeroed option buffer): a protocol-level getsockopt there \
                      sets the option and answers zeros or EINVAL; ours reads the host's value";

/// Steps where our answer differs from NetBSD's on purpose: (step, our line, why).
const DIFFERENCES: &[(&str, &str, &str)] = &[
    (
        "getsockopt TCP_NODELAY set",
        "getsockopt TCP_NODELAY set: ok 1",
        GETOPT,
    ),
    (
        "inet6 getsockopt IPV6_V6ONLY",
        "inet6 getsockopt IPV6_V6ONLY: ok 1",
        "besides the above (the get sets V6ONLY to 0 on NetBSD's sockin, whose host sockets \
         keep the host's default), ours start v6-only as NetBSD's inet6 (ip6_v6only), which \
         also keeps IPv4 off inet6 sockets for the address policy",
    ),
    (
        "accept",
        "accept: ok 1002/CONNECTOR/7f0000010000000000000000",
        "NetBSD's sockin makes the connection in its worker thread (sonewconn) without the \
     peer's address, so accept copies out uninitialised kernel memory (a different 255-byte \
     garbage name each run); ours gives the connector's sockaddr_in",
    ),
];

#[test]
fn sockin_probe_answers_as_netbsd() {
    let srv = Server::unix_env(
        &["-lrumpnet", "-lrumpnet_net", "-lrumpnet_sockin"],
        &[("RUMP_SOCKIN_ALLOW", "127.0.0.0/8,[::1],192.0.2.1")],
    );
    let ours = sockin::run(&srv.url).0;
    transcript::assert_as_netbsd(&ours, NETBSD, DIFFERENCES);
}

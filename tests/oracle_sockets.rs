//! NetBSD as the oracle for sockets (issue 15): the probe of `tests/oracle/sockets.rs` was
//! run against NetBSD's own rump_server (`rump_server -lrumpvfs -lrumpnet -lrumpnet_net
//! -lrumpnet_local URL`, then `cargo run --example oracle_sockets -- URL >
//! tests/oracle/sockets.netbsd`), and our server must answer every step as NetBSD did,
//! except where we deliberately differ: those steps are listed in `DIFFERENCES` with our
//! answer and the reason.

mod common;

#[path = "oracle/netlocal.rs"]
mod netlocal;
#[path = "oracle/sockets.rs"]
mod sockets;
#[path = "oracle/sysctl.rs"]
#[allow(dead_code)]
mod sysctl;
#[path = "oracle/transcript.rs"]
mod transcript;

use common::Server;

/// NetBSD's transcript.
const NETBSD: &str = include_str!("oracle/sockets.netbsd");

const PADDING: &str = "struct timeval's tv_usec is 4 bytes followed by 4 bytes of padding that \
                       NetBSD copies out uninitialised (stack garbage, different per run); \
                       ours are zero";

/// Steps where our answer differs from NetBSD's on purpose: (step, our line, why).
const DIFFERENCES: &[(&str, &str, &str)] = &[
    (
        "stream getsockopt SO_RCVTIMEO",
        "stream getsockopt SO_RCVTIMEO: ok 00000000000000000000000000000000",
        PADDING,
    ),
    (
        "dgram getsockopt SO_RCVTIMEO",
        "dgram getsockopt SO_RCVTIMEO: ok 00000000000000000000000000000000",
        PADDING,
    ),
    (
        "seqpacket getsockopt SO_RCVTIMEO",
        "seqpacket getsockopt SO_RCVTIMEO: ok 00000000000000000000000000000000",
        PADDING,
    ),
    (
        "getsockopt SO_SNDTIMEO set",
        "getsockopt SO_SNDTIMEO set: ok 010000000000000020a1070000000000",
        PADDING,
    ),
];

#[test]
fn socket_probe_answers_as_netbsd() {
    let srv = Server::unix(&["-lrumpvfs", "-lrumpnet", "-lrumpnet_net", "-lrumpnet_local"]);
    let ours = sockets::run(&srv.url).0;
    transcript::assert_as_netbsd(&ours, NETBSD, DIFFERENCES);
}

/// Without `-lrumpnet` every socket call is `ENOSYS`, as NetBSD's server without it.
#[test]
fn without_rumpnet_socket_calls_are_enosys_as_netbsd() {
    let srv = Server::unix(&["-lrumpvfs"]);
    let ours = sockets::run_absent(&srv.url).0;
    transcript::assert_as_netbsd(&ours, include_str!("oracle/sockets-nonet.netbsd"), &[]);
}

/// `-lrumpnet` alone: the calls exist, no family does (`EAFNOSUPPORT`, `ENOTSOCK`).
#[test]
fn rumpnet_without_local_answers_as_netbsd() {
    let srv = Server::unix(&["-lrumpvfs", "-lrumpnet"]);
    let ours = sockets::run_absent(&srv.url).0;
    transcript::assert_as_netbsd(&ours, include_str!("oracle/sockets-rumpnet.netbsd"), &[]);
}

/// The `net.local` sysctl nodes as NetBSD shows them with `-lrumpnet_local`
/// (`oracle/netlocal.netbsd`), the three `pcblist` leaves (lists of `struct kinfo_pcb`)
/// included; reading one without its four name arguments is EINVAL as NetBSD's, with them
/// the (empty) list (`tests/oracle_pcblist.rs` has sockets in it).
#[test]
fn net_local_sysctl_nodes_as_netbsd() {
    const NETLOCAL: &str = include_str!("oracle/netlocal.netbsd");
    let srv = Server::unix(&["-lrumpvfs", "-lrumpnet_local"]);
    let ours = netlocal::run(&srv.url);
    transcript::assert_as_netbsd(&ours, NETLOCAL, &[]);
    // Without the component there is no net.local (NetBSD's server with -lrumpvfs alone
    // answers ENOENT too).
    let plain = Server::unix(&["-lrumpvfs"]);
    assert_eq!(
        netlocal::run(&plain.url),
        vec!["net.local: query errno 2".to_string()]
    );
}

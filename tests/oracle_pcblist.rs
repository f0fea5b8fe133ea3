//! NetBSD as the oracle for the `net.local.*.pcblist` sysctl leaves (`netstat -f local`):
//! the probe of `tests/oracle/pcblist.rs` was run against NetBSD's own rump_server
//! (`rump_server -s -lrumpvfs -lrumpnet -lrumpnet_net -lrumpnet_local URL`, then
//! `cargo run --example oracle_pcblist -- URL > tests/oracle/pcblist.netbsd`), and our
//! server must answer every step as NetBSD did: record sizes, the size probe's slop, the
//! partial copies, argument errors, and each record's fields with kernel pointers compared
//! symbolically (which record a `ki_conn`/`ki_refs`/`ki_nextref` names).

mod common;

#[path = "oracle/pcblist.rs"]
mod pcblist;
#[path = "oracle/sysctl.rs"]
#[allow(dead_code)]
mod sysctl;
#[path = "oracle/transcript.rs"]
mod transcript;

use common::Server;

/// NetBSD's transcript.
const NETBSD: &str = include_str!("oracle/pcblist.netbsd");

#[test]
fn net_local_pcblist_as_netbsd() {
    let srv = Server::unix(&["-lrumpvfs", "-lrumpnet", "-lrumpnet_net", "-lrumpnet_local"]);
    let ours = pcblist::run(&srv.url);
    transcript::assert_as_netbsd(&ours.0, NETBSD, &[]);
}

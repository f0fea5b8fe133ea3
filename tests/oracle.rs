//! NetBSD as the oracle for hostile clients: the probe of `tests/oracle/hostile.rs` was run
//! against NetBSD's own rump_server (buildrump.sh, docs/benchmarks.md "NetBSD's rump_server
//! as the reference": `rump_server -lrumpvfs -lrumpfs_tmpfs URL`, then
//! `cargo run --example oracle_probe -- URL > tests/oracle/hostile.netbsd`), and our server
//! must answer every step as NetBSD did, except where we deliberately differ: those steps
//! are listed in `DIFFERENCES` with our answer and the reason.

mod common;

#[path = "oracle/hostile.rs"]
mod hostile;
#[path = "oracle/transcript.rs"]
mod transcript;

use common::Server;

/// NetBSD's transcript.
const NETBSD: &str = include_str!("oracle/hostile.netbsd");

/// Steps where our answer differs from NetBSD's on purpose: (step, our line, why).
const DIFFERENCES: &[(&str, &str, &str)] = &[];

#[test]
fn hostile_probe_answers_as_netbsd() {
    let srv = Server::unix(&["-lrumpvfs", "-lrumpfs_tmpfs"]);
    // The probe ends with reboot(RB_HALT): the kernel halts, the process stays (as NetBSD's).
    let ours = hostile::run(&srv.url).0;
    transcript::assert_as_netbsd(&ours, NETBSD, DIFFERENCES);
}

//! NetBSD as the oracle for the other calls NetBSD's programs make (issue 14 item 3): the
//! probe of `tests/oracle/calls.rs` was run against NetBSD's own rump_server
//! (`rump_server -lrumpvfs -lrumpfs_tmpfs URL`, then
//! `cargo run --example oracle_calls -- URL > tests/oracle/calls.netbsd`), and our server
//! must answer every step as NetBSD did, except where we deliberately differ: those steps
//! are listed in `DIFFERENCES` with our answer and the reason.

mod common;

#[path = "oracle/calls.rs"]
mod calls;
#[path = "oracle/transcript.rs"]
mod transcript;

use common::Server;

/// NetBSD's transcript.
const NETBSD: &str = include_str!("oracle/calls.netbsd");

/// Steps where our answer differs from NetBSD's on purpose: (step, our line, why).
const DIFFERENCES: &[(&str, &str, &str)] = &[
    (
        "modctl 2 probe (len 0)",
        "modctl 2 probe (len 0): ok len 392",
        "one module, tmpfs: NetBSD's rump kernel also links ksem, suser and wapbl, which this \
         kernel does not have (no POSIX semaphores, no FFS log), so it does not list them",
    ),
    (
        "modctl 2",
        "modctl 2: ok tmpfs(src 0 class 2 ref 0 req '')",
        "the same module list: tmpfs only",
    ),
    (
        "modctl 2 short",
        "modctl 2 short: ok tmpfs",
        "the first record of that list",
    ),
    (
        "modctl 4",
        "modctl 4: ok count>0 true len>4 true",
        "NetBSD 7.99's kernel predates the NetBSD 9 layout (MODCTL_STAT = 4); both are \
         served, the command number telling them apart",
    ),
    (
        "getrandom 32",
        "getrandom 32: ok 32",
        "getrandom(2) is NetBSD 10's (sys_getrandom.c), which this server's ABI follows; \
         NetBSD 7.99's kernel predates it",
    ),
];

#[test]
fn calls_probe_answers_as_netbsd() {
    // `-r 512M`: NetBSD's rump kernel without `-r` counts 512 MiB (its default `physmem`),
    // which RLIMIT_MEMLOCK follows; ours takes the host's memory then.
    let srv = Server::unix(&["-lrumpvfs", "-lrumpfs_tmpfs", "-r", "512m"]);
    let ours = calls::run(&srv.url).0;
    transcript::assert_as_netbsd(&ours, NETBSD, DIFFERENCES);
}

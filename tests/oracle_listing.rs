//! NetBSD as the oracle for listings, tmpfs sizes, file flags and the rlimit sysctl nodes
//! (issue 14 item 4): the probe of `tests/oracle/listing.rs` was run against NetBSD's own
//! rump_server (`rump_server -lrumpvfs -lrumpfs_tmpfs -r 64m URL`, then
//! `cargo run --example oracle_listing -- URL > tests/oracle/listing.netbsd`), and our
//! server must answer every step as NetBSD did, except where we deliberately differ: those
//! steps are listed in `DIFFERENCES` with our answer and the reason.

mod common;

#[path = "oracle/listing.rs"]
mod listing;
#[path = "oracle/transcript.rs"]
mod transcript;

use common::Server;

/// NetBSD's transcript.
const NETBSD: &str = include_str!("oracle/listing.netbsd");

/// Steps where our answer differs from NetBSD's on purpose: (step, our line, why). A `*` in
/// our line stands for any run of characters without a space.
const DIFFERENCES: &[(&str, &str, &str)] = &[
    (
        "lstat /",
        "lstat /: ok ino 3 mode 40755 nlink 4 size 512 blocks 1 flags 0x0",
        "directory link counts on rumpfs are 2 + subdirectories (as tmpfs/FFS); NetBSD's \
         rumpfs always says 2 (netbsd-abi.md §10)",
    ),
    (
        "lstat /tmp",
        "lstat /tmp: ok ino 5 mode 41777 nlink 3 size 512 blocks 1 flags 0x0",
        "the same: /tmp holds the subdirectory d",
    ),
    (
        "lstat /tmp/d",
        "lstat /tmp/d: ok ino 8 mode 40755 nlink 3 size 512 blocks 1 flags 0x0",
        "the same: /tmp/d holds sub",
    ),
    (
        "statvfs /tmp/t (used)",
        "statvfs /tmp/t (used): ok bsize 4096 frsize 4096 blocks * bfree 14749 \
         bavail 14749 files 279706 ffree 279684",
        "the pages a tmpfs holds are what its budget is charged (its real heap: nodes, \
         entries with their names, data pages: 28 or 29 here, as the structures' sizes \
         change) where NetBSD counts 26 from its structure sizes; the free pages and nodes \
         are NetBSD's",
    ),
    (
        "rumpfs: user chflags nodump",
        "rumpfs: user chflags nodump: ok",
        "a rumpfs node belongs to the user who made it (as on tmpfs/FFS); NetBSD's rumpfs \
         gives every node uid 0, so its owner check refuses the user",
    ),
    (
        "rumpfs: user chflags uchg",
        "rumpfs: user chflags uchg: ok",
        "the same ownership",
    ),
    (
        "rumpfs: flags of /tmp/mine",
        "rumpfs: flags of /tmp/mine: ok 0x2",
        "the flag the user set (rumpfs stores flags without acting on them, as NetBSD's: \
         the user's unlink that follows succeeds on both)",
    ),
];

#[test]
fn listing_probe_answers_as_netbsd() {
    let srv = Server::unix(&["-lrumpvfs", "-lrumpfs_tmpfs", "-r", "64m"]);
    let ours = listing::run(&srv.url).0;
    transcript::assert_as_netbsd(&ours, NETBSD, DIFFERENCES);
}

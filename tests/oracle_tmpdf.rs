//! NetBSD as the oracle for tmpfs's sizes in a kernel started without `-r` (issue 14): the
//! probe of `tests/oracle/tmpdf.rs` was run against NetBSD's own rump_server
//! (`rump_server -lrumpvfs -lrumpfs_tmpfs URL`, then
//! `cargo run --example oracle_tmpdf -- URL > tests/oracle/tmpdf.netbsd`). Without `-r` our
//! kernel's budget is the host's memory, but df of an unlimited tmpfs must show what a rump
//! kernel shows: its default 512 MiB `physmem`, whatever the host has. No differences.

mod common;

#[path = "oracle/tmpdf.rs"]
mod tmpdf;
#[path = "oracle/transcript.rs"]
mod transcript;

use common::Server;

/// NetBSD's transcript.
const NETBSD: &str = include_str!("oracle/tmpdf.netbsd");

#[test]
fn tmpfs_df_without_r_answers_as_netbsd() {
    let srv = Server::unix(&["-lrumpvfs", "-lrumpfs_tmpfs"]);
    let ours = tmpdf::run(&srv.url).0;
    transcript::assert_as_netbsd(&ours, NETBSD, &[]);
}

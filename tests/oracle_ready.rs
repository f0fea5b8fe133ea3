//! NetBSD as the oracle for readiness (issue 14 item 2): the probe of
//! `tests/oracle/ready.rs` was run against NetBSD's own rump_server
//! (`rump_server -lrumpvfs -lrumpfs_tmpfs URL`, then
//! `cargo run --example oracle_ready -- URL > tests/oracle/ready.netbsd`), and our server
//! must answer every step as NetBSD did, except where we deliberately differ: those steps
//! are listed in `DIFFERENCES` with our answer and the reason.

mod common;

#[path = "oracle/ready.rs"]
mod ready;
#[path = "oracle/transcript.rs"]
mod transcript;

use common::Server;

/// NetBSD's transcript.
const NETBSD: &str = include_str!("oracle/ready.netbsd");

const FIFO: &str = "FIFOs on tmpfs: NetBSD's rump kernel has no fifofs (open is EOPNOTSUPP and \
                    the rest fails with EBADF); ours serves FIFOs on the pipe engine, so they \
                    poll as a pipe's ends do";
const VNODE_FILTERS: &str = "kqueue on files: NetBSD 7.99's genfs has no EVFILT_WRITE (EINVAL) \
                             and its rumpfs no kqueue filters at all (EOPNOTSUPP); ours \
                             serves EVFILT_READ/WRITE/VNODE on every file system, EVFILT_WRITE \
                             always ready as NetBSD 10's filt_genfswrite; the events shown \
                             are the file's write knote, always ready";

/// Steps where our answer differs from NetBSD's on purpose: (step, our line, why).
const DIFFERENCES: &[(&str, &str, &str)] = &[
    ("open fifo reader", "open fifo reader: ok 3", FIFO),
    (
        "poll fifo reader alone",
        "poll fifo reader alone: ok 1 [0x55]",
        FIFO,
    ),
    ("open fifo writer", "open fifo writer: ok 4", FIFO),
    ("poll fifo both", "poll fifo both: ok 1 [0x0 0x4]", FIFO),
    ("write fifo", "write fifo: ok", FIFO),
    ("poll fifo data", "poll fifo data: ok 1 [0x41]", FIFO),
    ("close fifo writer", "close fifo writer: ok", FIFO),
    (
        "poll fifo writer gone",
        "poll fifo writer gone: ok 1 [0x55]",
        FIFO,
    ),
    ("close fifo reader", "close fifo reader: ok", FIFO),
    (
        "write filter on kqueue",
        "write filter on kqueue: ok 1 [4 1 0x4000 0x0 22 0x5eed]",
        "NetBSD's kqueue_kqfilter returns 1 (EPERM's number) for a filter other than \
         EVFILT_READ; ours says EINVAL, as every other refused filter",
    ),
    (
        "kevent100 nothing",
        "kevent100 nothing: ok 0",
        "NetBSD 10's __kevent100 (501, 72-byte struct kevent) is served beside __kevent50; \
         NetBSD 7.99 predates it",
    ),
    (
        "write filter on a file",
        "write filter on a file: ok 1 [5 1 0x1 0x0 0 0x5eed]",
        VNODE_FILTERS,
    ),
    (
        "read filter on rumpfs",
        "read filter on rumpfs: ok 1 [5 1 0x1 0x0 0 0x5eed]",
        VNODE_FILTERS,
    ),
    (
        "vnode filter on rumpfs",
        "vnode filter on rumpfs: ok 1 [5 1 0x1 0x0 0 0x5eed]",
        VNODE_FILTERS,
    ),
];

#[test]
fn ready_probe_answers_as_netbsd() {
    let srv = Server::unix(&["-lrumpvfs", "-lrumpfs_tmpfs"]);
    let ours = ready::run(&srv.url).0;
    transcript::assert_as_netbsd(&ours, NETBSD, DIFFERENCES);
}

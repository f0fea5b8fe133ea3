//! NetBSD as the oracle for kqueue's process filters (issue 14): the probe of
//! `tests/oracle/procev.rs` was run against NetBSD's own rump_server (`rump_server URL`,
//! then `cargo run --example oracle_procev -- URL > tests/oracle/procev.netbsd`). Our
//! server must answer every step as NetBSD did — `EVFILT_PROC` registration and its
//! errors (`ESRCH`, `EACCES`) — except where we deliberately do better: NetBSD's rump kernel
//! never fires an `EVFILT_PROC` knote (its process code calls no `KNOTE`, and its knotes
//! dangle once the process is gone: the reference server died when the probe's last
//! connection closed) and refuses `EVFILT_SIGNAL` (`EOPNOTSUPP`); ours fires them as
//! NetBSD's own kernel does. Those steps are listed in `DIFFERENCES` with our answer.

mod common;

#[path = "oracle/procev.rs"]
mod procev;
#[path = "oracle/transcript.rs"]
mod transcript;

use common::Server;

/// NetBSD's transcript.
const NETBSD: &str = include_str!("oracle/procev.netbsd");

const SIGNAL: &str = "NetBSD's rump kernel has no EVFILT_SIGNAL (sig_filtops' attach is \
                      eopnotsupp); ours counts every signal the kernel raises to the process \
                      (SIGPIPE, SIGXFSZ), as kern_sig.c's filt_signal";
const PROC: &str = "NetBSD's rump kernel attaches EVFILT_PROC knotes but never notes a fork, \
                    exec or exit on them; ours does as NetBSD's kernel: NOTE_FORK, NOTE_EXEC, \
                    NOTE_EXIT with the wait status and EV_EOF|EV_ONESHOT, NOTE_TRACK's knote \
                    on the child with NOTE_CHILD and the parent's pid";

/// Steps where our answer differs from NetBSD's on purpose: (step, our line, why).
const DIFFERENCES: &[(&str, &str, &str)] = &[
    ("signal SIGPIPE", "signal SIGPIPE: ok", SIGNAL),
    ("signal 1000", "signal 1000: ok", SIGNAL),
    (
        "events after SIGPIPE",
        "events after SIGPIPE: ok 1 [13 5 0x21 0x0 2 0x5eed]",
        SIGNAL,
    ),
    ("child2 signal", "child2 signal: ok", SIGNAL),
    (
        "events after fork",
        "events after fork: ok 1 [self 4 0x21 0x40000000 0 0x5eed]",
        PROC,
    ),
    (
        "events after exec",
        "events after exec: ok 1 [child 4 0x21 0x20000000 0 0x5eed]",
        PROC,
    ),
    (
        "events after exit",
        "events after exit: ok 1 [child 4 0x8031 0x80000000 0 0x5eed]",
        PROC,
    ),
    (
        "events after tracked fork",
        "events after tracked fork: ok 2 [self 4 0x21 0x40000000 0 0x5eed] \
         [child2 4 0x25 0x4 self 0x5eed]",
        PROC,
    ),
    (
        "events after tracked exit",
        "events after tracked exit: ok 1 [child2 4 0x8035 0x80000000 0 0x5eed]",
        PROC,
    ),
];

#[test]
fn procev_probe_answers_as_netbsd() {
    let srv = Server::unix(&[]);
    let ours = procev::run(&srv.url).0;
    transcript::assert_as_netbsd(&ours, NETBSD, DIFFERENCES);
}

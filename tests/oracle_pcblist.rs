//! NetBSD as the oracle for the `net.local.*.pcblist` sysctl leaves (`netstat -f local`):
//! the probe of `tests/oracle/pcblist.rs` was run against NetBSD's own rump_server
//! (`rump_server -s -lrumpvfs -lrumpnet -lrumpnet_net -lrumpnet_local URL`, then
//! `cargo run --example oracle_pcblist -- URL > tests/oracle/pcblist.netbsd`), and our
//! server must answer every step as NetBSD did: record sizes, the size probe's slop, the
//! partial copies, argument errors, and each record's fields with kernel pointers compared
//! symbolically (which record a `ki_conn`/`ki_refs`/`ki_nextref` names).

mod common;

#[path = "oracle/pcblist.rs"]
#[allow(dead_code)] // each test file runs some of the probes
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

/// NetBSD's TCP sets option flags (`TF_REQ_SCALE`, `TF_REQ_TSTMP`, `TF_SACK_PERMIT`, …) that
/// this stack (smoltcp) does not keep.
const TFLAGS: &str = "ki_tflags are NetBSD's tcpcb option flags; ours are 0";

/// `net.inet.{tcp,udp,raw}.pcblist` as NetBSD's `sysctl_inpcblist` answers them
/// (`tests/oracle/pcblist-inet.netbsd`, recorded with `-lrumpnet_netinet`).
#[test]
fn net_inet_pcblist_as_netbsd() {
    let srv = Server::unix(&[
        "-lrumpvfs",
        "-lrumpnet",
        "-lrumpnet_net",
        "-lrumpnet_local",
        "-lrumpnet_netinet",
    ]);
    let ours = pcblist::run_inet(&srv.url);
    // Each TCP record of NetBSD's with its tflags, ours the same line with 0 there.
    let netbsd = include_str!("oracle/pcblist-inet.netbsd");
    let ours_too: Vec<(String, String)> = netbsd
        .lines()
        .filter(|l| l.contains(" tflags=") && !l.contains(" tflags=0x0 "))
        .map(|l| {
            // The step is what comes before the line's first `:` (transcript's rule).
            let step = l.split(':').next().unwrap_or(l).to_string();
            let words: Vec<String> = l
                .split(' ')
                .map(|w| match w.starts_with("tflags=") {
                    true => "tflags=0x0".to_string(),
                    false => w.to_string(),
                })
                .collect();
            (step, words.join(" "))
        })
        .collect();
    assert_eq!(
        ours_too.len(),
        3,
        "NetBSD's three TCP records have option flags"
    );
    let differences: Vec<(&str, &str, &str)> = ours_too
        .iter()
        .map(|(s, l)| (s.as_str(), l.as_str(), TFLAGS))
        .collect();
    transcript::assert_as_netbsd(&ours.0, netbsd, &differences);
}

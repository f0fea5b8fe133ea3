//! NetBSD as the oracle for the `pcblist` leaves of the other families (the style of
//! `tests/oracle_pcblist.rs`; probes in `tests/oracle/pcblist.rs`):
//!
//! - `net.inet6.{tcp6,udp6,raw6}.pcblist` (`sysctl_inpcblist` with `PF_INET6`), recorded
//!   from NetBSD's rump_server with `-lrumpnet -lrumpnet_net -lrumpnet_netinet
//!   -lrumpnet_netinet6 -lrumpnet_shmif` (`cargo run --example oracle_pcblist -- --inet6
//!   URL > tests/oracle/pcblist-inet6.netbsd`), with AF_INET sockets beside the AF_INET6
//!   ones to show each family's lists hold only their own;
//! - sockin (`-lrumpnet -lrumpnet_net -lrumpnet_sockin`, `--sockin URL >
//!   tests/oracle/pcblist-sockin.netbsd`, then the server halted): NetBSD's sockin has no
//!   pcb table and no sysctl nodes, so with sockin sockets open there is no `tcp`, `udp`,
//!   `raw`, `tcp6`, `udp6` or `raw6` node and every `pcblist` read is `ENOENT`; ours the same.

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

/// NetBSD's TCP sets option flags (`TF_REQ_SCALE`, `TF_REQ_TSTMP`, `TF_SACK_PERMIT`, …) that
/// this stack (smoltcp) does not keep.
const TFLAGS: &str = "ki_tflags are NetBSD's tcpcb option flags; ours are 0";
/// The random flow label NetBSD's connect picks.
const V6ONLY_FLOW: &str = "NetBSD's connect picks a random flow label; ours keep none";

/// Our line for NetBSD's record line `l`, if it differs where documented: `ki_tflags` 0,
/// and on AF_INET6 records no flow label (`IN6P_IPV6_V6ONLY` is NetBSD's, default on).
fn ours_for(l: &str) -> Option<(String, String, &'static str)> {
    if !l.contains(" record ") {
        return None;
    }
    let mut why = None;
    let words: Vec<String> = l
        .split(' ')
        .map(|w| {
            if let Some(f) = w.strip_prefix("tflags=") {
                if f != "0x0" {
                    why.get_or_insert(TFLAGS);
                    return "tflags=0x0".to_string();
                }
            }
            if w.contains("/flow") {
                why = Some(V6ONLY_FLOW);
                return w.replace("/flow", "");
            }
            w.to_string()
        })
        .collect();
    let why = why?;
    // The step is what comes before the line's first `:` (transcript's rule).
    let step = l.split(':').next().unwrap_or(l).to_string();
    Some((step, words.join(" "), why))
}

#[test]
fn net_inet6_pcblist_as_netbsd() {
    let srv = Server::unix(common::NETINET6);
    let ours = pcblist::run_inet6(&srv.url);
    let netbsd = include_str!("oracle/pcblist-inet6.netbsd");
    let expected: Vec<(String, String, &str)> = netbsd.lines().filter_map(ours_for).collect();
    // Four TCP6 records, one UDP6 and one TCP record differ as documented (tflags, flow
    // labels); `IN6P_IPV6_V6ONLY` is set as NetBSD's (it made ten before).
    assert_eq!(expected.len(), 6, "{expected:#?}");
    let differences: Vec<(&str, &str, &str)> = expected
        .iter()
        .map(|(s, l, w)| (s.as_str(), l.as_str(), *w))
        .collect();
    transcript::assert_as_netbsd(&ours.0, netbsd, &differences);
    // The lists are not empty: each AF_INET6 socket made is listed once, in its own family.
    let records = |tag: &str| ours.0.iter().filter(|l| l.starts_with(tag)).count();
    assert_eq!(records("made tcp6 record"), 4);
    assert_eq!(records("made udp6 record"), 3);
    assert_eq!(records("made raw6 record"), 2);
    assert_eq!(records("made tcp record"), 1);
    assert_eq!(records("made udp record"), 1);
    assert_eq!(records("made raw record"), 1);
}

#[test]
fn sockin_pcblist_as_netbsd() {
    let srv = Server::unix(&["-lrumpnet", "-lrumpnet_net", "-lrumpnet_sockin"]);
    let ours = pcblist::run_sockin(&srv.url);
    let netbsd = include_str!("oracle/pcblist-sockin.netbsd");
    transcript::assert_as_netbsd(&ours.0, netbsd, &[]);
    // The sockets were made (the absence of records is not a failed probe).
    assert!(
        ours.0.iter().any(|l| l == "tcp accept: ok"),
        "{:#?}",
        ours.0
    );
    assert!(ours.0.iter().any(|l| l == "tcp6 bind: ok"), "{:#?}", ours.0);
}

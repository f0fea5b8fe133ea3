//! Replays one section of `tests/oracle/netbsd_net.rs` (NetBSD's tests/net scenarios) on
//! five of our servers in one directory against NetBSD's recorded answers
//! (`tests/oracle/netbsd-net.netbsd`). Used by tests/netbsd_net_*.rs.
#![allow(dead_code)] // each test file uses one of the two

use crate::common::{InDir, TempDir};
use crate::{netbsd_net, transcript};

/// NetBSD's transcript.
const NETBSD: &str = include_str!("../oracle/netbsd-net.netbsd");

/// The five servers of the probe, its section `name`, compared with NetBSD's.
pub fn replay(name: &str) {
    replay_with(name, &[]);
}

/// [`replay`] with listed differences (`transcript::assert_as_netbsd`'s).
pub fn replay_with(name: &str, differences: &[(&str, &str, &str)]) {
    let dir = TempDir::new(&format!("netbsd-net-{name}"));
    let srvs: Vec<InDir> = netbsd_net::SERVERS
        .iter()
        .map(|n| InDir::start(&dir, &format!("{n}.sock"), netbsd_net::LIBS))
        .collect();
    let urls: Vec<String> = srvs.iter().map(|s| s.url.clone()).collect();
    let ours = netbsd_net::run(&urls, Some(name));
    drop(srvs);
    let theirs = netbsd_net::section(NETBSD, name);
    assert!(theirs.lines().any(|l| l == format!("## {name}")));
    transcript::assert_as_netbsd(&ours.0, &theirs, differences);
}

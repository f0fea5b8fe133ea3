//! NetBSD as the oracle for `__sysctl`: the probe of `tests/oracle/sysctl.rs` was run
//! against NetBSD's own rump_server (`rump_server -lrumpvfs URL`, then
//! `cargo run --example sysctl_probe -- URL > tests/oracle/sysctl.netbsd`). Ours must show
//! the same tree (names, numbers, types, flags, sizes, values, descriptions, in the same
//! order) and answer every error case as NetBSD did, except where we differ on purpose:
//! `DIFFERENCES`. Values that belong to the server (CPUs, memory) are checked against its
//! command line instead.

mod common;

#[path = "oracle/sysctl.rs"]
#[allow(dead_code)]
mod probe;

use common::Server;

/// NetBSD's transcript (`-lrumpvfs`).
const NETBSD: &str = include_str!("oracle/sysctl.netbsd");
/// NetBSD's transcript with the file systems loaded
/// (`-lrumpvfs -lrumpfs_tmpfs -lrumpdev_disk -lrumpfs_ffs`): `vfs.ffs`, `vfs.ufs`.
const NETBSD_FFS: &str = include_str!("oracle/sysctl-ffs.netbsd");
/// NetBSD's transcript with the device framework (`-lrumpvfs -lrumpdev`):
/// `kern.detachall`, before `kern.posix`.
const NETBSD_DEV: &str = include_str!("oracle/sysctl-dev.netbsd");

/// Lines where our answer differs from NetBSD's on purpose: (key, our line, why).
const DIFFERENCES: &[(&str, &str, &str)] = &[
    (
        "kern.osrelease",
        r#"kern.osrelease 1.2 string flags=0x1000200 size=5 = "10.1" # "#,
        "the release is the one the sp banner announces (kernel::OSRELEASE, NetBSD 10 \
         syscall numbers such as __dup3100); the reference is 7.99.34",
    ),
    (
        "kern.osrevision",
        "kern.osrevision 1.3 int flags=0x1000a00 size=4 = 1001000000 imm=0x3baa0c40 # ",
        "__NetBSD_Version__ of that release",
    ),
    (
        "kern.version",
        "kern.version 1.4 string flags=0x1000200 size=26 = <varies> # ",
        "\"NetBSD 10.1 (RUMP-ROAST)\\n\": the same text with our release",
    ),
    (
        "kern.module.path",
        r#"kern.module.path 1.1038.1041 string flags=0x1000000 size=26 = "/stand/amd64/10.1/modules" # "#,
        "the module path names the release",
    ),
];

/// The key of a transcript line: a node's name, or an error case's name.
fn key(line: &str) -> &str {
    let mut words = line.split(' ');
    let first = words.next().unwrap_or("");
    let numbers = words.next().unwrap_or("");
    let is_node = !numbers.is_empty()
        && numbers.split('.').all(|n| n.parse::<i64>().is_ok())
        && line.contains(" flags=0x");
    match is_node {
        true => first,
        false => line.split(": ").next().unwrap_or(line),
    }
}

#[test]
fn sysctl_probe_answers_as_netbsd() {
    compare(&["-lrumpvfs"], NETBSD);
}

#[test]
fn sysctl_probe_with_ffs_answers_as_netbsd() {
    let args = [
        "-lrumpvfs",
        "-lrumpfs_tmpfs",
        "-lrumpdev_disk",
        "-lrumpfs_ffs",
    ];
    compare(&args, NETBSD_FFS);
}

#[test]
fn sysctl_probe_with_rumpdev_answers_as_netbsd() {
    compare(&["-lrumpvfs", "-lrumpdev"], NETBSD_DEV);
}

fn compare(args: &[&str], netbsd: &str) {
    let srv = Server::unix(args);
    let ours = probe::run(&srv.url).0;
    let theirs: Vec<&str> = netbsd.lines().collect();
    let our_keys: Vec<&str> = ours.iter().map(|l| key(l)).collect();
    let their_keys: Vec<&str> = theirs.iter().map(|l| key(l)).collect();
    assert_eq!(our_keys, their_keys, "the tree and the cases, in order");
    let mut bad = Vec::new();
    for (o, n) in ours.iter().zip(&theirs) {
        if o == n {
            continue;
        }
        match DIFFERENCES.iter().find(|d| d.0 == key(n)) {
            Some((_, line, _)) if line == o => {}
            _ => bad.push(format!("ours   `{o}`\nNetBSD `{n}`")),
        }
    }
    assert!(
        bad.is_empty(),
        "differences from NetBSD:\n{}",
        bad.join("\n")
    );
    for (k, line, why) in DIFFERENCES {
        assert!(
            ours.iter().any(|o| o == line),
            "documented difference `{k}` ({why}) no longer seen"
        );
    }
    let leaves = theirs.iter().filter(|l| l.contains(" = ")).count();
    assert!(leaves >= 90, "NetBSD's tree has {leaves} leaves");
}

fn read(c: &mut client::Client, name: &[i32]) -> Vec<u8> {
    probe::read_leaf(c, name).unwrap_or_else(|e| panic!("read {name:?}: {e:?}"))
}

fn int(b: &[u8]) -> i64 {
    match b.len() {
        4 => i64::from(i32::from_le_bytes(b.try_into().unwrap())),
        8 => i64::from_le_bytes(b.try_into().unwrap()),
        n => panic!("{n}-byte integer"),
    }
}

#[test]
fn hw_values_are_the_servers_own() {
    let srv = Server::unix(&["-c", "3", "-r", "96m", "-lrumpvfs", "-lrumpfs_tmpfs"]);
    let mut c = client::Client::connect(&srv.url).unwrap();
    assert_eq!(int(&read(&mut c, &[6, 3])), 3, "hw.ncpu is -c");
    assert_eq!(int(&read(&mut c, &[6, 16])), 3, "hw.ncpuonline");
    assert_eq!(int(&read(&mut c, &[6, 13])), 96 << 20, "hw.physmem64 is -r");
    assert_eq!(int(&read(&mut c, &[6, 5])), 96 << 20, "hw.physmem");
    let fstypes = probe::query(&mut c, &[3, 0])
        .unwrap()
        .into_iter()
        .find(|n| n.name == "fstypes")
        .expect("vfs.generic.fstypes");
    let v = read(&mut c, &[3, 0, fstypes.num]);
    assert_eq!(
        v, b"rumpfs tmpfs\0",
        "vfs.generic.fstypes lists the loaded ones"
    );
    // kern.hostname: rump-<5-digit pid>.<host>, as NetBSD's rumpuser names it.
    let host = read(&mut c, &[1, 10]);
    let pid = srv.child.as_ref().unwrap().id();
    let want = format!("rump-{pid:05}.");
    assert!(
        host.starts_with(want.as_bytes()),
        "kern.hostname {:?}",
        String::from_utf8_lossy(&host)
    );
    // Two reads of kern.arandom differ (the host's random source, not a constant).
    let a = probe::sysctl(&mut c, &[1, 81], Some(64), Some(64), None);
    let b = probe::sysctl(&mut c, &[1, 81], Some(64), Some(64), None);
    assert_eq!((a.errno, b.errno, a.oldlen), (0, 0, 64));
    assert_ne!(a.old, b.old);
}

#[test]
fn without_rumpvfs_no_vfs_nodes() {
    let srv = Server::unix(&[]);
    let mut c = client::Client::connect(&srv.url).unwrap();
    let vfs = probe::query(&mut c, &[3]).unwrap();
    assert!(vfs.is_empty(), "vfs has no children without the faction");
    // NetBSD (no components): kern.timecounter is the first dynamic node, 1025.
    let kern = probe::query(&mut c, &[1]).unwrap();
    let tc = kern.iter().find(|n| n.name == "timecounter").unwrap();
    assert_eq!(tc.num, 1025);
    assert!(kern.iter().all(|n| n.name != "buf"));
}

/// `kern.uidinfo.proccnt` as NetBSD's rump kernel answered it (rumpctrl's sysctl against the
/// reference, `-lrumpvfs`): 3 for one root client (proc0 and init are root's), 4 with a
/// second; a process that became uid 1000 counts 1 for that uid.
#[test]
fn uidinfo_proccnt_counts_proc0_and_init_for_root() {
    let srv = Server::unix(&["-lrumpvfs"]);
    let mut c = client::Client::connect(&srv.url).unwrap();
    let ui = probe::query(&mut c, &[1])
        .unwrap()
        .into_iter()
        .find(|n| n.name == "uidinfo")
        .expect("kern.uidinfo");
    let pc = probe::query(&mut c, &[1, ui.num])
        .unwrap()
        .into_iter()
        .find(|n| n.name == "proccnt")
        .expect("kern.uidinfo.proccnt");
    let name = [1, ui.num, pc.num];
    assert_eq!(int(&read(&mut c, &name)), 3, "one root client");
    let mut d = client::Client::connect(&srv.url).unwrap();
    assert_eq!(int(&read(&mut c, &name)), 4, "two root clients");
    d.syscall(23, &[1000], &mut []).unwrap();
    assert_eq!(int(&read(&mut d, &name)), 1, "uid 1000's own process");
    assert_eq!(int(&read(&mut c, &name)), 3, "root's again");
}

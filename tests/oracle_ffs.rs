//! NetBSD as the oracle for FFS and block devices (issue 13): the probe of
//! `tests/oracle/ffs.rs` was run against NetBSD's own rump_server
//! (`scripts/oracle_ffs.sh`: `cargo run --example oracle_ffs -- /work/ref/rump_server >
//! tests/oracle/ffs.netbsd`), and our server must answer every step as NetBSD did, except
//! where we deliberately differ (`DIFFERENCES`, with the reason) or where a difference is a
//! known open bug (`OPEN`, issue 13; each must still differ, so a fix removes its entry).
//! Lines of the makefs sections are compared only when makefs is installed (CI installs it).

#[path = "oracle/ffs.rs"]
mod probe;
#[path = "oracle/transcript.rs"]
mod transcript;

use std::process::Command;

/// NetBSD's transcript.
const NETBSD: &str = include_str!("oracle/ffs.netbsd");

/// Steps where our answer differs from NetBSD's on purpose: (step, our line, why).
const DIFFERENCES: &[(&str, &str, &str)] = &[
    (
        "ro.update-ro-busy",
        "ro.update-ro-busy: errno 16",
        "rw->ro downgrade: the reference (2016) lacks IMNT_CAN_RWTORO for FFS and says \
         EOPNOTSUPP; NetBSD 10's FFS downgrades, refusing while a file is open for writing",
    ),
    (
        "ro.update-ro",
        "ro.update-ro: ok",
        "rw->ro downgrade allowed (NetBSD 10's FFS), see ro.update-ro-busy",
    ),
    (
        "ro.statvfs-ro-again",
        "ro.statvfs-ro-again: ok flag=0x1001 bsize=4096 frsize=512 iosize=4096 blocks=26975 \
         bfree=26929 bavail=25581 files=11198 ffree=11186 favail=11186 namemax=255 type=ffs \
         on=/mnt from=/dk2",
        "read-only after the downgrade",
    ),
    (
        "ro.unlink-missing-again",
        "ro.unlink-missing-again: errno 30",
        "read-only after the downgrade (ufs_lookup: EROFS before the name is searched)",
    ),
    (
        "ro.unlink-held",
        "ro.unlink-held: errno 30",
        "read-only after the downgrade",
    ),
    (
        "ro.unlink-held-rw",
        "ro.unlink-held-rw: ok",
        "the file the downgraded mount kept is removed once read-write again",
    ),
    (
        "blk.pwrite at-end",
        "blk.pwrite at-end: ok 0",
        "etfs blk window end not a multiple of 2048: NetBSD's spec_write fills 2048-byte \
         buffers (BLKDEV_IOSIZE) that rumpblk accepts whenever they start inside the window, so \
         it reports bytes past the end as written though only its cache holds them (lost on \
         eviction, never on the host), and refuses a buffer starting past the end; ours cuts \
         at the window end as the raw device does (netbsd-abi.md §10): nothing is reported \
         written that the host file will not get",
    ),
    (
        "blk.pwrite across-end",
        "blk.pwrite across-end: ok 512",
        "as blk.pwrite at-end",
    ),
    (
        "blk.pwrite across-end-big",
        "blk.pwrite across-end-big: ok 1536",
        "as blk.pwrite at-end",
    ),
    (
        "blk.pwrite last-partial-block",
        "blk.pwrite last-partial-block: ok 1536",
        "as blk.pwrite at-end",
    ),
    (
        "blk.pread at-end",
        "blk.pread at-end: ok 0 {}",
        "as blk.pwrite at-end: ours reads as the raw device (0 bytes from the end on, cut at it)",
    ),
    (
        "blk.pread across-end",
        "blk.pread across-end: ok 512 {23}",
        "as blk.pwrite at-end: ours reads as the raw device (0 bytes from the end on, cut at it)",
    ),
    (
        "blk.pread across-end-big",
        "blk.pread across-end-big: ok 1536 {23}",
        "as blk.pwrite at-end: ours reads as the raw device (0 bytes from the end on, cut at it)",
    ),
    (
        "blk.pread beyond-end",
        "blk.pread beyond-end: ok 0 {}",
        "as blk.pwrite at-end: ours reads as the raw device (0 bytes from the end on, cut at it)",
    ),
    (
        "blk.pread far-beyond",
        "blk.pread far-beyond: ok 0 {}",
        "as blk.pwrite at-end: ours reads as the raw device (0 bytes from the end on, cut at it)",
    ),
    (
        "blk.pread last-partial-block",
        "blk.pread last-partial-block: ok 1536 {23}",
        "as blk.pwrite at-end: ours reads as the raw device (0 bytes from the end on, cut at it)",
    ),
];

/// Differences that are open bugs of issue 13 (not deliberate): step prefixes.
const OPEN: &[(&str, &str)] = &[];

fn have_makefs() -> bool {
    Command::new("makefs").arg("-h").output().is_ok()
}

#[test]
fn ffs_probe_answers_as_netbsd() {
    let dir = std::env::temp_dir().join(format!("oracle_ffs_test.{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ours = probe::run(env!("CARGO_BIN_EXE_rump_server").as_ref(), &dir).0;
    let _ = std::fs::remove_dir_all(&dir);
    let makefs = have_makefs();
    if !makefs {
        eprintln!("makefs not installed: the makefs steps are not compared");
    }
    let theirs: Vec<&str> = NETBSD
        .lines()
        .filter(|l| makefs || !l.starts_with("makefs."))
        .collect();
    assert_eq!(
        ours.len(),
        theirs.len(),
        "transcript lengths differ: ours {ours:#?}"
    );
    let mut bad = Vec::new();
    let mut open_seen = vec![false; OPEN.len()];
    for (i, (o, n)) in ours.iter().zip(&theirs).enumerate() {
        if o == n {
            continue;
        }
        let step = n.split(": ").next().unwrap_or("");
        if let Some((_, line, _)) = DIFFERENCES.iter().find(|d| d.0 == step) {
            if line == o {
                continue;
            }
        }
        if let Some(k) = OPEN.iter().position(|(p, _)| step.starts_with(p)) {
            open_seen[k] = true;
            continue;
        }
        bad.push(format!("line {}: ours `{o}`, NetBSD `{n}`", i + 1));
    }
    assert!(
        bad.is_empty(),
        "differences from NetBSD:\n{}",
        bad.join("\n")
    );
    for (step, line, why) in DIFFERENCES {
        assert!(
            ours.iter().any(|o| o == line),
            "documented difference `{step}` ({why}) no longer seen"
        );
    }
    for ((prefix, why), seen) in OPEN.iter().zip(open_seen) {
        assert!(
            seen,
            "open difference `{prefix}` ({why}) no longer seen: remove it from OPEN"
        );
    }
}

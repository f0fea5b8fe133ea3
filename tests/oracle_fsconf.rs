//! NetBSD as the oracle for per-file-system answers (issue 13): the probe of
//! `tests/oracle/fsconf.rs` (pathconf on every kind of node of rumpfs, tmpfs and FFS; the
//! namespace calls on `.` and `..` on read-write and read-only mounts) was run against NetBSD's
//! own rump_server (`cargo run --example oracle_fsconf -- /work/ref/rump_server >
//! tests/oracle/fsconf.netbsd`), and ours must answer every step as NetBSD did, except where
//! we deliberately differ (`DIFFERENCES`, with the reason).

#[allow(dead_code)] // the FFS probe's launcher and image maker only
#[path = "oracle/ffs.rs"]
mod ffs;
#[path = "oracle/fsconf.rs"]
mod fsconf;
#[path = "oracle/transcript.rs"]
mod transcript;

/// NetBSD's transcript.
const NETBSD: &str = include_str!("oracle/fsconf.netbsd");

/// Steps where our answer differs from NetBSD's on purpose: (step, our line, why).
const DIFFERENCES: &[(&str, &str, &str)] = &[
    (
        "rumpfs.lpathconf.link",
        "rumpfs.lpathconf.link: e22 32767 e22 e22 255 1024 512 1 1 e22 1 43 1024 1 e22",
        "lpathconf(2) is NetBSD 8's (vfs_syscalls.c, the number 499 this server's ABI follows); NetBSD 7.99's kernel predates it. Ours answers the link's own file system, as NetBSD 10",
    ),
    (
        "tmpfs.pathconf.fifo",
        "tmpfs.pathconf.fifo: e22 32767 e22 e22 e22 e22 512 1 e22 e22 1 e22 e22 e22 e22",
        "NetBSD's rump kernel has no fifofs, so every vnode operation on a FIFO of tmpfs or FFS is EOPNOTSUPP there; ours has FIFOs and answers fifo_pathconf's values, as NetBSD's full kernel",
    ),
    (
        "tmpfs.lpathconf.link",
        "tmpfs.lpathconf.link: e22 32767 e22 e22 255 1024 512 1 1 e22 1 64 e22 e22 e22",
        "lpathconf(2) is NetBSD 8's (vfs_syscalls.c, the number 499 this server's ABI follows); NetBSD 7.99's kernel predates it. Ours answers the link's own file system, as NetBSD 10",
    ),
    (
        "ffs.pathconf.fifo",
        "ffs.pathconf.fifo: e22 32767 e22 e22 e22 e22 512 1 e22 e22 1 e22 e22 e22 e22",
        "NetBSD's rump kernel has no fifofs, so every vnode operation on a FIFO of tmpfs or FFS is EOPNOTSUPP there; ours has FIFOs and answers fifo_pathconf's values, as NetBSD's full kernel",
    ),
    (
        "ffs.lpathconf.link",
        "ffs.lpathconf.link: e22 32767 e22 e22 255 1024 512 1 1 e22 1 42 1024 1 e22",
        "lpathconf(2) is NetBSD 8's (vfs_syscalls.c, the number 499 this server's ABI follows); NetBSD 7.99's kernel predates it. Ours answers the link's own file system, as NetBSD 10",
    ),
    (
        "rumpfs.dots.rename x to ..",
        "rumpfs.dots.rename x to ..: errno 22",
        "NetBSD's rumpfs has no rename (EOPNOTSUPP); ours renames on rumpfs (netbsd-abi.md §10), so the check tmpfs and FFS make answers: EINVAL for a target ending in '..'",
    ),
];

#[test]
fn fsconf_probe_answers_as_netbsd() {
    let dir = std::env::temp_dir().join(format!("oracle_fsconf_test.{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ours = fsconf::run(env!("CARGO_BIN_EXE_rump_server").as_ref(), &dir).0;
    let _ = std::fs::remove_dir_all(&dir);
    transcript::assert_as_netbsd(&ours, NETBSD, DIFFERENCES);
}

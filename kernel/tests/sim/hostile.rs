//! Hostile clients (issue 19) as generators: each attack is a process of its own that runs
//! beside the ordinary slots and checks its invariants the moment each call returns.
//!
//! * **Deep trees**: a `mkdir`+`chdir` chain (tens to thousands of levels; now and then 5,000
//!   or 20,000) on tmpfs or rumpfs; at the bottom `getcwd` (exact path or `ERANGE`), `rmdir`
//!   of the top (`ENOTEMPTY`) and a rename of the top into its own subtree (`EINVAL`); then
//!   the tree goes: tmpfs unmounted (`EBUSY` while the process is inside, then from `/`, or
//!   `MNT_FORCE` under the process, which then leaves or exits there), rumpfs removed level by
//!   level with `..`. Invariant: nothing crashes — a seed runs on a thread with a loop
//!   thread's 2 MiB stack, so a recursive drop or walk overflows it as it did the server's.
//! * **chroot without chdir**: after `chroot(dir)` a relative name that exists only outside
//!   `dir` is `ENOENT`, `getcwd` is `/`; `..` from a descriptor opened before the chroot is
//!   the new root; `fchdir` to it is `EPERM`.
//! * **Privilege drop**: after `setuid`/`seteuid` to another uid, `reboot`, `mount`,
//!   `unmount`, `chroot`, `mknod` of a device and `modctl` load are `EPERM`, and the kernel
//!   is not halting.
//! * **Budget floods** (a phase of their own, alone in the kernel: the budget is global):
//!   symbolic links with long targets, hard links with long names, long-named files, byte-range
//!   lock records; every failure is one a bound gives (`ENOSPC`, `ENOLCK`, `ENOMEM`,
//!   `EMLINK`), everything is released afterwards (the leak checks of `run_seed`). The checks
//!   that the bound holds — no more items than the budget holds at their minimum size, and
//!   the budget's `used_max` never above its limit — are checked too
//!   ([`FLOOD_BOUNDS_CHECKED`]).

use std::rc::Rc;
use std::sync::Arc;

use kernel::abi::sysnum::*;
use kernel::abi::{MNT_FORCE, O_CREAT, O_RDONLY, O_RDWR, RB_HALT, S_IFCHR};
use kernel::file::kqueue::{EVFILT_READ, EVFILT_TIMER, EV_ADD, KNOTE_CHARGE_BYTES, KQ_TIMERS_MAX};
use kernel::fs::tmpfs::{TmpfsArgs, TMPFS_ARGS_SIZE};
use kernel::{Errno, Proc};

use crate::sched::Rng;
use crate::world::SimMem;
use crate::World;

/// Whether the flood phase asserts that the budget bounds each flood (items × their minimum
/// bytes ≤ the limit, `used_max` ≤ the limit). On since vnodes, directory entries, symbolic
/// link targets and lock records are charged fallibly (issue 19 item 5); switch it off only
/// to look at what a flood does without the bounds.
pub const FLOOD_BOUNDS_CHECKED: bool = true;

/// [`FLOOD_BOUNDS_CHECKED`].
pub fn flood_bounds_checked() -> bool {
    FLOOD_BOUNDS_CHECKED
}

/// Where the ordinary slots' memory is not: the hostile clients' address space.
const HMEM: u64 = 0x40_0000_0000;
const HMAP: usize = 0x3000 + (16 << 10);
const P0: u64 = 0;
const P1: u64 = 0x800;
const OUT: u64 = 0x1000;
const DATA: u64 = 0x3000;
/// `getcwd`'s largest useful buffer (it clamps to 4 × `PATH_MAX`).
const CWD_BUF: usize = 4096;
/// Gate owners of the hostile clients (never disconnected).
const OWNER_BASE: u64 = 1 << 40;
const F_SETLK: u64 = 8;
/// `MODCTL_LOAD`.
const MODCTL_LOAD: u64 = 0;

/// Which file system a deep chain or a flood lives on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum On {
    Rumpfs,
    /// A tmpfs mounted for the attack, with this size limit (0: none).
    Tmpfs(u64),
}

/// How a deep tmpfs chain ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeepEnd {
    /// `EBUSY` from inside, then unmounted from `/`.
    Unmount,
    /// `MNT_FORCE` under the process, which then changes to `/`.
    ForceThenLeave,
    /// `MNT_FORCE` under the process, which then exits with its current directory there.
    ForceThenExit,
}

/// A deep chain.
#[derive(Clone, Copy, Debug)]
pub struct Deep {
    pub depth: usize,
    pub on: On,
    pub end: DeepEnd,
}

/// What a flood makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloodKind {
    /// Symbolic links whose targets have this many bytes.
    Symlinks(usize),
    /// Hard links to one file, with names of this many bytes.
    HardLinks(usize),
    /// Files whose names have this many bytes.
    LongNames(usize),
    /// Byte-range lock records on one file.
    Locks,
}

/// A flood.
#[derive(Clone, Copy, Debug)]
pub struct Flood {
    pub kind: FloodKind,
    pub on: On,
}

/// The attacks of one seed.
#[derive(Clone, Copy, Debug, Default)]
pub struct Plan {
    pub deep: Option<Deep>,
    /// chroot without chdir; `true`: the current directory starts inside the new root.
    pub chroot: Option<bool>,
    /// Privilege drop; `true`: `seteuid` (else `setuid`).
    pub privdrop: Option<bool>,
    pub flood: Option<Flood>,
    /// A flood of knotes (timers on distinct idents, read knotes on a pipe).
    pub knotes: bool,
}

impl Plan {
    /// Drawn from a stream of its own, so that a seed's ordinary configuration is unchanged.
    pub fn from_seed(seed: u64, mem_limit: Option<u64>) -> Plan {
        let mut r = Rng::new(seed ^ 0x4057_11e5_0019_0000);
        let depth = if seed % 97 == 41 {
            20_000
        } else if seed % 12 == 5 {
            5_000
        } else {
            r.range(8, 200) as usize
        };
        let deep_on = if r.chance(1, 2) {
            On::Tmpfs(0)
        } else {
            On::Rumpfs
        };
        let end = [
            DeepEnd::Unmount,
            DeepEnd::ForceThenLeave,
            DeepEnd::ForceThenExit,
        ][r.below(3) as usize];
        let deep = (depth >= 5_000 || r.chance(1, 2)).then_some(Deep {
            depth,
            on: deep_on,
            end,
        });
        let chroot = r.chance(1, 2).then(|| r.chance(1, 3));
        let privdrop = r.chance(1, 2).then(|| r.chance(1, 2));
        let kind = match r.below(4) {
            0 => FloodKind::Symlinks(r.range(256, 1024) as usize),
            1 => FloodKind::HardLinks(r.range(128, 256) as usize),
            2 => FloodKind::LongNames(r.range(128, 256) as usize),
            _ => FloodKind::Locks,
        };
        // Small tmpfs sizes keep floods short; the kernel budget only when it is small.
        let flood_on = if mem_limit == Some(2 << 20) && r.chance(1, 3) {
            On::Rumpfs
        } else {
            On::Tmpfs([64 << 10, 128 << 10, 256 << 10][r.below(3) as usize])
        };
        let flood = r.chance(1, 3).then_some(Flood { kind, on: flood_on });
        // Drawn last: the draws above stay what they were before knote floods.
        let knotes = r.chance(1, 4);
        Plan {
            deep,
            chroot,
            privdrop,
            flood,
            knotes,
        }
    }
}

/// One hostile process and its memory.
struct H {
    w: Rc<World>,
    p: Arc<Proc>,
    mem: SimMem,
    what: &'static str,
}

type R = Result<[i64; 2], Errno>;

fn int(v: i32) -> u64 {
    u64::from(v as u32)
}

fn tmpfs_args(size: u64) -> [u8; TMPFS_ARGS_SIZE] {
    let mut a = TmpfsArgs::parse(&TmpfsArgs::default_args()).expect("default args");
    a.size_max = size as i64;
    a.root_mode = 0o777;
    a.encode()
}

impl H {
    fn new(w: &Rc<World>, n: u64, what: &'static str) -> H {
        let mem = SimMem::new(OWNER_BASE + n);
        mem.map(HMEM, HMAP);
        H {
            w: w.clone(),
            p: w.k.spawn_guest(b"hostile").expect("spawn hostile"),
            mem,
            what,
        }
    }

    fn ctx(&self) -> String {
        format!(
            "seed {}: hostile {} (pid {})",
            self.w.cfg.seed,
            self.what,
            self.p.pid()
        )
    }

    /// A syscall; no hostile call may halt the kernel.
    async fn sys(&self, nr: u32, a: &[u64]) -> R {
        let mut slots = [0u64; 8];
        slots[..a.len()].copy_from_slice(a);
        let out = self.w.k.syscall(&self.p, &self.mem, nr, &slots).await;
        self.w.record(usize::MAX - 2, nr, &out.result);
        assert!(out.halt.is_none(), "{}: syscall {nr} halts", self.ctx());
        assert!(!self.w.k.halting(), "{}: kernel halting", self.ctx());
        out.result
    }

    async fn ok(&self, what: &str, nr: u32, a: &[u64]) -> i64 {
        match self.sys(nr, a).await {
            Ok(rv) => rv[0],
            Err(e) => panic!("{}: {what}: {e:?}", self.ctx()),
        }
    }

    async fn err(&self, what: &str, want: Errno, nr: u32, a: &[u64]) {
        let r = self.sys(nr, a).await;
        assert_eq!(r, Err(want), "{}: {what}", self.ctx());
    }

    fn put(&self, at: u64, b: &[u8]) -> u64 {
        self.mem.put(HMEM + at, b);
        HMEM + at
    }

    fn path(&self, at: u64, p: &str) -> u64 {
        let mut b = p.as_bytes().to_vec();
        b.push(0);
        self.put(at, &b)
    }

    async fn getcwd(&self, len: usize) -> Result<Vec<u8>, Errno> {
        let n = self.sys(SYS___getcwd, &[HMEM + OUT, len as u64]).await?[0] as usize;
        let got = self.mem.get(HMEM + OUT, n);
        assert_eq!(
            got.last(),
            Some(&0),
            "{}: getcwd not NUL-terminated",
            self.ctx()
        );
        Ok(got[..n - 1].to_vec())
    }

    async fn mount_tmpfs(&self, dir: &str, size: u64) {
        let t = self.path(P0, "tmpfs");
        let d = self.path(P1, dir);
        let args = self.put(DATA, &tmpfs_args(size));
        let a = [t, d, 0, args, TMPFS_ARGS_SIZE as u64];
        self.ok("mount tmpfs", SYS___mount50, &a).await;
    }

    async fn close(&self, fd: i64) {
        self.ok("close", SYS_close, &[fd as u64]).await;
    }

    fn exit(self) {
        self.w.k.exit_process(&self.p);
    }
}

/// Spawns this seed's concurrent attacks (deep tree, chroot, privilege drop) as tasks.
pub fn spawn_attacks(w: &Rc<World>, plan: &Plan) {
    if let Some(d) = plan.deep {
        let w2 = w.clone();
        w.exec.spawn("hostile deep".into(), async move {
            deep(&w2, d).await;
        });
    }
    if let Some(inside) = plan.chroot {
        let w2 = w.clone();
        w.exec.spawn("hostile chroot".into(), async move {
            chroot(&w2, inside).await;
        });
    }
    if let Some(e) = plan.privdrop {
        let w2 = w.clone();
        w.exec.spawn("hostile privdrop".into(), async move {
            privdrop(&w2, e).await;
        });
    }
}

/// The deep chain (see the module documentation).
async fn deep(w: &Rc<World>, d: Deep) {
    let h = H::new(w, 1, "deep tree");
    let top = "/h-deep";
    h.ok("mkdir top", SYS_mkdir, &[h.path(P0, top), 0o755])
        .await;
    if let On::Tmpfs(size) = d.on {
        h.mount_tmpfs(top, size).await;
    }
    h.ok("chdir top", SYS_chdir, &[h.path(P0, top)]).await;
    let name = h.path(P1, "d");
    let mut depth = 0;
    while depth < d.depth {
        let a = [int(kernel::abi::AT_FDCWD), name, 0o755];
        match h.sys(SYS_mkdirat, &a).await {
            Ok(_) => {}
            // A budget that is full stops the chain (vnodes are charged).
            Err(Errno::ENOSPC) => break,
            Err(e) => panic!("{}: mkdirat at depth {depth}: {e:?}", h.ctx()),
        }
        h.ok("chdir d", SYS_chdir, &[name]).await;
        depth += 1;
    }
    w.bump(|c| c.deep_levels += depth as u64);
    // getcwd at depth: the whole path, or ERANGE when it does not fit.
    let want = format!("{top}{}", "/d".repeat(depth));
    match h.getcwd(CWD_BUF).await {
        Ok(p) => assert_eq!(p, want.as_bytes(), "{}: getcwd at {depth}", h.ctx()),
        Err(e) => {
            assert_eq!(e, Errno::ERANGE, "{}: getcwd at {depth}", h.ctx());
            assert!(
                want.len() + 1 > CWD_BUF,
                "{}: ERANGE for {}",
                h.ctx(),
                want.len()
            );
        }
    }
    if depth >= 2 {
        let first = h.path(P0, &format!("{top}/d"));
        h.err(
            "rmdir of the chain's top",
            Errno::ENOTEMPTY,
            SYS_rmdir,
            &[first],
        )
        .await;
        // Into its own subtree: the walk up from the bottom finds the source.
        let to = h.path(P1, "x");
        let r = h.sys(SYS_rename, &[first, to]).await;
        assert_eq!(r, Err(Errno::EINVAL), "{}: rename into itself", h.ctx());
        h.err("rmdir .", Errno::EINVAL, SYS_rmdir, &[h.path(P0, ".")])
            .await;
    }
    let root = h.path(P0, "/");
    match d.on {
        On::Rumpfs => {
            // Level by level, back up with `..`.
            for i in (0..depth).rev() {
                h.ok("chdir ..", SYS_chdir, &[h.path(P0, "..")]).await;
                let r = h.sys(SYS_rmdir, &[h.path(P1, "d")]).await;
                assert_eq!(r, Ok([0, 0]), "{}: rmdir at depth {i}", h.ctx());
            }
            let cwd = h.getcwd(CWD_BUF).await;
            assert_eq!(
                cwd.as_deref(),
                Ok(top.as_bytes()),
                "{}: back at top",
                h.ctx()
            );
            h.ok("chdir /", SYS_chdir, &[root]).await;
        }
        On::Tmpfs(_) => {
            let t = h.path(P1, top);
            h.err("unmount from inside", Errno::EBUSY, SYS_unmount, &[t, 0])
                .await;
            match d.end {
                DeepEnd::Unmount => {
                    h.ok("chdir /", SYS_chdir, &[root]).await;
                    let t = h.path(P1, top);
                    h.ok("unmount", SYS_unmount, &[t, 0]).await;
                }
                DeepEnd::ForceThenLeave | DeepEnd::ForceThenExit => {
                    h.ok("forced unmount", SYS_unmount, &[t, MNT_FORCE]).await;
                    // The current directory is a dead file system's now.
                    let r = h.sys(SYS_mkdir, &[h.path(P0, "e"), 0o755]).await;
                    assert!(r.is_err(), "{}: mkdir in a dead tmpfs", h.ctx());
                    if d.end == DeepEnd::ForceThenLeave {
                        h.ok("chdir /", SYS_chdir, &[h.path(P0, "/")]).await;
                    }
                }
            }
        }
    }
    let h2 = H::new(w, 2, "deep tree cleanup");
    h.exit();
    h2.ok("rmdir top", SYS_rmdir, &[h2.path(P0, top)]).await;
    h2.exit();
}

/// chroot without chdir (see the module documentation).
async fn chroot(w: &Rc<World>, inside: bool) {
    let h = H::new(w, 3, "chroot");
    for d in ["/h-jail", "/h-jail/jail", "/h-jail/jail/in"] {
        h.ok("mkdir", SYS_mkdir, &[h.path(P0, d), 0o755]).await;
    }
    for f in ["/h-jail/secret", "/h-jail/jail/in/f"] {
        let fd = h
            .ok(
                "create",
                SYS_open,
                &[h.path(P0, f), u64::from(O_RDWR | O_CREAT), 0o644],
            )
            .await;
        h.close(fd).await;
    }
    let cwd = if inside { "/h-jail/jail/in" } else { "/h-jail" };
    h.ok("chdir", SYS_chdir, &[h.path(P0, cwd)]).await;
    let rd = u64::from(O_RDONLY);
    let outside = h
        .ok("open outside", SYS_open, &[h.path(P0, "/h-jail"), rd, 0])
        .await;
    h.ok("chroot", SYS_chroot, &[h.path(P0, "/h-jail/jail")])
        .await;
    let enoent = [
        "secret",
        "../secret",
        "../../secret",
        "/secret",
        "/h-jail/secret",
        "../h-jail/secret",
        "/../h-jail/secret",
    ];
    for p in enoent {
        let a = [h.path(P0, p), rd, 0];
        h.err(p, Errno::ENOENT, SYS_open, &a).await;
    }
    let want: &[u8] = if inside { b"/in" } else { b"/" };
    let got = h.getcwd(CWD_BUF).await;
    assert_eq!(got.as_deref(), Ok(want), "{}: getcwd after chroot", h.ctx());
    let f = if inside { "f" } else { "in/f" };
    let fd = h.ok(f, SYS_open, &[h.path(P0, f), rd, 0]).await;
    h.close(fd).await;
    // `..` from the descriptor outside the root is the new root.
    let at = |p| [outside as u64, h.path(P0, p), rd, 0];
    let fd = h.ok("openat ../in/f", SYS_openat, &at("../in/f")).await;
    h.close(fd).await;
    for p in ["../secret", "../h-jail/secret", "../../h-jail/secret"] {
        h.err(p, Errno::ENOENT, SYS_openat, &at(p)).await;
    }
    // As on NetBSD, the descriptor itself still reaches what is below it.
    let fd = h.ok("openat secret", SYS_openat, &at("secret")).await;
    h.close(fd).await;
    h.err(
        "fchdir outside",
        Errno::EPERM,
        SYS_fchdir,
        &[outside as u64],
    )
    .await;
    h.close(outside).await;
    h.exit();
    let h = H::new(w, 4, "chroot cleanup");
    for f in ["/h-jail/secret", "/h-jail/jail/in/f"] {
        h.ok("unlink", SYS_unlink, &[h.path(P0, f)]).await;
    }
    for d in ["/h-jail/jail/in", "/h-jail/jail", "/h-jail"] {
        h.ok("rmdir", SYS_rmdir, &[h.path(P0, d)]).await;
    }
    h.exit();
}

/// Privileged calls after a privilege drop (see the module documentation).
async fn privdrop(w: &Rc<World>, seteuid: bool) {
    let h = H::new(w, 5, "privilege drop");
    let dir = "/h-priv";
    h.ok("mkdir", SYS_mkdir, &[h.path(P0, dir), 0o777]).await;
    h.mount_tmpfs(dir, 0).await;
    let nr = if seteuid { SYS_seteuid } else { SYS_setuid };
    h.ok("drop privilege", nr, &[1000]).await;
    if !seteuid {
        h.err("setuid back to 0", Errno::EPERM, SYS_setuid, &[0])
            .await;
    }
    h.err("reboot", Errno::EPERM, SYS_reboot, &[u64::from(RB_HALT), 0])
        .await;
    let t = h.path(P0, "tmpfs");
    let d = h.path(P1, dir);
    let args = h.put(DATA, &tmpfs_args(0));
    let a = [t, d, 0, args, TMPFS_ARGS_SIZE as u64];
    h.err("mount", Errno::EPERM, SYS___mount50, &a).await;
    h.err("unmount", Errno::EPERM, SYS_unmount, &[h.path(P0, dir), 0])
        .await;
    h.err(
        "forced unmount",
        Errno::EPERM,
        SYS_unmount,
        &[h.path(P0, dir), MNT_FORCE],
    )
    .await;
    h.err("chroot", Errno::EPERM, SYS_chroot, &[h.path(P0, dir)])
        .await;
    let node = h.path(P0, "/h-priv/node");
    let dev = (3 << 8) | 2; // /dev/zero's number, a device all the same
    let a = [node, u64::from(S_IFCHR | 0o600), dev];
    h.err("mknod", Errno::EPERM, SYS___mknod50, &a).await;
    let name = h.path(P1, "tmpfs");
    let mut ml = [0u8; 32];
    ml[..8].copy_from_slice(&name.to_le_bytes());
    let mla = h.put(DATA, &ml);
    h.err("modctl load", Errno::EPERM, SYS_modctl, &[MODCTL_LOAD, mla])
        .await;
    h.exit();
    let h = H::new(w, 6, "privilege drop cleanup");
    h.ok("unmount", SYS_unmount, &[h.path(P0, dir), 0]).await;
    h.ok("rmdir", SYS_rmdir, &[h.path(P0, dir)]).await;
    h.exit();
}

/// The flood phase: runs alone (the budget is the kernel's), then removes what it made.
pub async fn flood(w: &Rc<World>, f: Flood) {
    let h = H::new(w, 7, "flood");
    let top = "/h-flood";
    h.ok("mkdir", SYS_mkdir, &[h.path(P0, top), 0o777]).await;
    if let On::Tmpfs(size) = f.on {
        h.mount_tmpfs(top, size).await;
    }
    h.ok("chdir", SYS_chdir, &[h.path(P0, top)]).await;
    // The limit that bounds the flood and the least bytes each item must be charged.
    // (Lock records are charged to the kernel budget, not to the file system's size.)
    let limit = match (f.kind, f.on) {
        (FloodKind::Locks, _) => w.cfg.mem_limit,
        (_, On::Tmpfs(size)) if size > 0 => Some(size),
        _ => w.cfg.mem_limit,
    };
    let item_bytes_min = match f.kind {
        FloodKind::Symlinks(n) | FloodKind::HardLinks(n) | FloodKind::LongNames(n) => n as u64,
        // A lock record's range, type and owner.
        FloodKind::Locks => 32,
    };
    // Past what the limit holds at the items' minimum size (lock floods stop earlier: each
    // costs a walk of the file's whole list, and `LOCKS_PER_OBJECT_MAX` bounds them anyway).
    let cap = match (f.kind, limit) {
        (FloodKind::Locks, _) => 3000,
        (_, Some(l)) => (l / item_bytes_min + 64).min(20_000),
        (_, None) => 300,
    } as usize;
    let name = |i: usize, len: usize| {
        let s = format!("{i}-");
        format!("{s}{}", "n".repeat(len.max(s.len() + 1) - s.len()))
    };
    let mut made = 0usize;
    let mut stop = None;
    let lockf = if f.kind == FloodKind::Locks || matches!(f.kind, FloodKind::HardLinks(_)) {
        let a = [h.path(P0, "f"), u64::from(O_RDWR | O_CREAT), 0o644];
        Some(h.ok("create", SYS_open, &a).await)
    } else {
        None
    };
    while made < cap {
        let r = match f.kind {
            FloodKind::Symlinks(n) => {
                let target = "t".repeat(n);
                let a = [h.path(P0, &target), h.path(P1, &name(made, 8))];
                h.sys(SYS_symlink, &a).await
            }
            FloodKind::HardLinks(n) => {
                let a = [h.path(P0, "f"), h.path(P1, &name(made, n))];
                h.sys(SYS_link, &a).await
            }
            FloodKind::LongNames(n) => {
                let a = [
                    h.path(P0, &name(made, n)),
                    u64::from(O_RDWR | O_CREAT),
                    0o644,
                ];
                let r = h.sys(SYS_open, &a).await;
                if let Ok([fd, _]) = r {
                    h.close(fd).await;
                }
                r
            }
            FloodKind::Locks => {
                // Disjoint one-byte write locks: one record each.
                let mut fl = [0u8; 24];
                fl[0..8].copy_from_slice(&(2 * made as i64).to_le_bytes());
                fl[8..16].copy_from_slice(&1i64.to_le_bytes());
                fl[20..22].copy_from_slice(&3i16.to_le_bytes());
                let a = [lockf.unwrap() as u64, F_SETLK, h.put(OUT, &fl)];
                h.sys(SYS_fcntl, &a).await
            }
        };
        match r {
            Ok(_) => made += 1,
            Err(e) => {
                let bounded = [Errno::ENOSPC, Errno::ENOLCK, Errno::ENOMEM, Errno::EMLINK];
                assert!(
                    bounded.contains(&e),
                    "{}: {f:?} item {made}: {e:?}",
                    h.ctx()
                );
                stop = Some(e);
                break;
            }
        }
    }
    if flood_bounds_checked() {
        if let Some(l) = limit {
            assert!(
                made as u64 * item_bytes_min <= l,
                "{}: {f:?}: {made} items of at least {item_bytes_min} bytes in {l} bytes \
                 (stopped by {stop:?})",
                h.ctx()
            );
        }
        let b = w.k.budget();
        assert!(
            b.used_max() <= b.limit(),
            "{}: budget used {} > limit {}",
            h.ctx(),
            b.used_max(),
            b.limit()
        );
    }
    w.bump(|c| c.flood_items += made as u64);
    if w.verbose {
        eprintln!("{}: {f:?}: {made} items, stopped by {stop:?}", h.ctx());
    }
    // Clean up: the lock records go with the process.
    for i in 0..made {
        let r = match f.kind {
            FloodKind::Symlinks(_) => h.sys(SYS_unlink, &[h.path(P0, &name(i, 8))]).await,
            FloodKind::HardLinks(n) | FloodKind::LongNames(n) => {
                h.sys(SYS_unlink, &[h.path(P0, &name(i, n))]).await
            }
            FloodKind::Locks => break,
        };
        assert_eq!(r, Ok([0, 0]), "{}: unlink item {i}", h.ctx());
    }
    if let Some(fd) = lockf {
        h.close(fd).await;
        h.ok("unlink f", SYS_unlink, &[h.path(P0, "f")]).await;
    }
    h.ok("chdir /", SYS_chdir, &[h.path(P0, "/")]).await;
    if matches!(f.on, On::Tmpfs(_)) {
        h.ok("unmount", SYS_unmount, &[h.path(P0, top), 0]).await;
    }
    h.ok("rmdir", SYS_rmdir, &[h.path(P0, top)]).await;
    h.exit();
}

/// The knote flood, alone like the budget floods: `EV_ADD` of timers on distinct idents
/// (and read knotes on a pipe in other kqueues) until `ENOMEM` — the budget or the
/// server's timer bound (`KQ_TIMERS_MAX`) — which must come within the bound; then every
/// kqueue is closed and a new timer must be accepted again (the bound's count returned).
pub async fn knote_flood(w: &Rc<World>) {
    let h = H::new(w, 8, "knote flood");
    let limit = w.cfg.mem_limit;
    let cap = 2 * KQ_TIMERS_MAX;
    let kq = h.ok("kqueue", SYS_kqueue, &[]).await;
    let pipe = h.sys(SYS_pipe, &[]).await.expect("pipe");
    let kev = |ident: u64, filter: u32, data: i64| {
        let mut b = [0u8; 40];
        b[..8].copy_from_slice(&ident.to_le_bytes());
        b[8..12].copy_from_slice(&filter.to_le_bytes());
        b[12..16].copy_from_slice(&EV_ADD.to_le_bytes());
        b[24..32].copy_from_slice(&data.to_le_bytes());
        b
    };
    let ts = h.put(DATA, &[0u8; 16]);
    let mut kqs = vec![kq];
    let mut made = 0usize;
    let mut stop = None;
    while made < cap {
        // One read knote on the pipe in a fresh kqueue now and then (a kqueue per knote:
        // one ident per kqueue), else a timer of a new ident.
        let (q, ch) = if made % 64 == 63 {
            match h.sys(SYS_kqueue, &[]).await {
                Ok([q, _]) => {
                    kqs.push(q);
                    (q, kev(pipe[0] as u64, EVFILT_READ, 0))
                }
                Err(e) => {
                    stop = Some(e);
                    break;
                }
            }
        } else {
            (kq, kev(made as u64 + 1, EVFILT_TIMER, 3_600_000))
        };
        let ch = h.put(OUT, &ch);
        match h.sys(SYS___kevent50, &[q as u64, ch, 1, 0, 0, ts]).await {
            Ok(_) => made += 1,
            Err(e) => {
                stop = Some(e);
                break;
            }
        }
    }
    let b = w.k.budget();
    assert!(
        matches!(stop, Some(Errno::ENOMEM | Errno::EMFILE)),
        "{}: {made} knotes, stopped by {stop:?} (cap {cap})",
        h.ctx()
    );
    if flood_bounds_checked() {
        if let Some(l) = limit {
            assert!(
                made as u64 * KNOTE_CHARGE_BYTES <= l,
                "{}: {made} knotes of {KNOTE_CHARGE_BYTES} bytes in {l}",
                h.ctx()
            );
        }
        assert!(
            b.used_max() <= b.limit(),
            "{}: budget used {} > limit {}",
            h.ctx(),
            b.used_max(),
            b.limit()
        );
    }
    w.bump(|c| c.flood_items += made as u64);
    if w.verbose {
        eprintln!("{}: {made} knotes, stopped by {stop:?}", h.ctx());
    }
    for q in kqs {
        h.close(q).await;
    }
    // The knotes went with their kqueues: a timer is accepted again.
    let kq = h.ok("kqueue again", SYS_kqueue, &[]).await;
    let ch = h.put(OUT, &kev(1, EVFILT_TIMER, 3_600_000));
    h.ok(
        "timer after the flood",
        SYS___kevent50,
        &[kq as u64, ch, 1, 0, 0, ts],
    )
    .await;
    h.close(kq).await;
    h.close(pipe[0]).await;
    h.close(pipe[1]).await;
    h.exit();
}

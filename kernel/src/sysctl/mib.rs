//! The tree a NetBSD rump kernel shows (init_sysctl.c, init_sysctl_base.c and the
//! subsystems' own nodes), with values true for this kernel: `hw.ncpu` is `-c`,
//! `hw.physmem64` the memory of `-r` (the host's when not given), `kern.hostname`
//! `rump-<pid>.<host>`, `kern.arandom`/`kern.urandom` from `Host::random`.
//!
//! Dynamic numbers (1025, …) are given in registration order, so the nodes are registered
//! in the order NetBSD's rump kernel creates them; the VFS faction's nodes come only with
//! it, as in NetBSD (`tests/oracle/sysctl.netbsd` is the reference).

use super::{
    Env, Mib, Spec, CTLFLAG_ANYNUMBER, CTLFLAG_ANYWRITE, CTLFLAG_PERMANENT, CTLFLAG_READWRITE,
    CTLTYPE_INT, CTLTYPE_QUAD, CTLTYPE_STRING, CTLTYPE_STRUCT,
};
use crate::fs::FsKind;
use crate::{BootConfig, Errno, Result};

/// `PROC_CURPROC`: `proc.curproc`, the caller.
pub const PROC_CURPROC: i32 = 0x7fff_ffff;
/// `MAXHOSTNAMELEN`.
const MAXHOSTNAMELEN: u64 = 256;
/// Clock ticks per second (`hz`, `kern.clockrate`).
const HZ: i64 = 100;

/// `PERMANENT` (most top-level nodes), none (what NetBSD creates without it), read-write.
const P: u32 = CTLFLAG_PERMANENT;
const PRW: u32 = CTLFLAG_PERMANENT | CTLFLAG_READWRITE;
const RW: u32 = CTLFLAG_READWRITE;
const ANYRW: u32 = CTLFLAG_READWRITE | CTLFLAG_ANYWRITE;

/// `__NetBSD_Version__` of a release string: `10.1` → 1001000000, `7.99.34` → 799003400.
pub fn osrevision(release: &str) -> i32 {
    let mut parts = release.split('.').map(|p| p.parse::<i32>().unwrap_or(0));
    let (major, minor, patch) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    major * 100_000_000 + minor * 1_000_000 + patch * 100
}

/// `hw.physmem64`: the memory of `-r` (the server passes the host's without it).
fn physmem(cfg: &BootConfig) -> u64 {
    cfg.mem_limit_bytes.unwrap_or(0)
}

fn reg(m: &Mib, parent: &[&str], spec: Spec) {
    // The base tree is fixed: a clash is a bug caught by the unit tests.
    let r = m.register(parent, spec);
    debug_assert!(r.is_ok(), "sysctl base tree: {r:?}");
}

fn random(env: &Env<'_>, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    env.k.host().random(&mut v);
    v
}

/// `kern.arandom`: `oldlen` bytes (none for 0), at most 256 (`E2BIG`).
fn arandom(env: &Env<'_>) -> Result<Vec<u8>> {
    match env.oldlen {
        0 => Ok(Vec::new()),
        n if n > 256 => Err(Errno::E2BIG),
        n => Ok(random(env, n as usize)),
    }
}

/// The process a `proc.<pid>` name is about: the caller for `curproc` or its own pid,
/// another process only for root or its owner (`ESRCH` if there is none, else `EPERM`).
fn target_proc(env: &Env<'_>) -> Result<()> {
    let pid = env.name.get(1).copied().ok_or(Errno::EINVAL)?;
    if pid == PROC_CURPROC || pid == env.p.pid() {
        return Ok(());
    }
    let other = env
        .k
        .all_procs()
        .into_iter()
        .find(|p| p.pid() == pid)
        .ok_or(Errno::ESRCH)?;
    let (me, them) = (env.p.cred(), other.cred());
    if me.is_root() || (me.euid == them.uid && me.uid == them.uid) {
        Ok(())
    } else {
        Err(Errno::EPERM)
    }
}

/// The names of `proc.<pid>.rlimit`'s nodes, numbered from 1 in `RLIMIT_*` order.
const RLIMIT_NAMES: [&str; 12] = [
    "cputime",
    "filesize",
    "datasize",
    "stacksize",
    "coredumpsize",
    "memoryuse",
    "memorylocked",
    "maxproc",
    "descriptors",
    "sbsize",
    "vmemoryuse",
    "maxlwp",
];

/// Runs `f` on the process a `proc.<pid>` name is about (see [`target_proc`]).
fn with_target<T>(env: &Env<'_>, f: impl FnOnce(&crate::proc::Proc) -> Result<T>) -> Result<T> {
    target_proc(env)?;
    let pid = env.name.get(1).copied().ok_or(Errno::EINVAL)?;
    if pid == PROC_CURPROC || pid == env.p.pid() {
        return f(env.p);
    }
    let all = env.k.all_procs();
    let other = all.iter().find(|p| p.pid() == pid).ok_or(Errno::ESRCH)?;
    f(other)
}

/// `sysctl_proc_plimit`: limit `which` of the process, its soft or hard half; a write
/// replaces that half and goes through `dosetrlimit` with the caller's privilege (a soft
/// limit above the hard one `EINVAL`, raising a hard limit without root `EPERM`).
fn plimit_read(env: &Env<'_>, which: u32, hard: bool) -> Result<Vec<u8>> {
    let rl = with_target(env, |p| p.rlimit(which))?;
    let v = if hard { rl.max } else { rl.cur };
    Ok(v.to_le_bytes().to_vec())
}

fn plimit_write(env: &Env<'_>, which: u32, hard: bool, data: &[u8]) -> Result<()> {
    let v = u64::from_le_bytes(data.try_into().map_err(|_| Errno::EINVAL)?);
    let root = env.p.cred().is_root();
    with_target(env, |p| {
        let mut rl = p.rlimit(which)?;
        match hard {
            true => rl.max = v,
            false => rl.cur = v,
        }
        p.set_rlimit(which, rl, root)
    })
}

/// Builds the base tree for a kernel booted with `cfg`.
pub fn populate(m: &Mib, cfg: &BootConfig) {
    let rel = crate::OSRELEASE;
    for (name, num, flags) in [
        ("kern", 1, P),
        ("vm", 2, P),
        ("vfs", 3, P),
        ("net", 4, P),
        ("debug", 5, P),
        ("hw", 6, P),
        ("machdep", 7, P),
        ("user", 8, P),
        ("ddb", 9, P),
        ("proc", 10, P),
        ("vendor", 11, PRW),
        ("emul", 12, P),
        ("security", 13, P),
    ] {
        reg(m, &[], Spec::node(name, Some(num)).flags(flags));
    }
    kern_static(m, cfg, rel);
    hw_static(m, cfg);
    proc_curproc(m);
    if cfg.vfs {
        reg(m, &["kern"], Spec::node("buf", Some(76)).flags(0));
        reg(m, &["vfs"], Spec::node("generic", Some(0)).flags(0));
        reg(
            m,
            &["vfs", "generic"],
            Spec::int("magiclinks", Some(4), 0).flags(RW),
        );
        reg(m, &["hw"], Spec::node("firmware", None));
        let fw = "/libdata/firmware:/usr/libdata/firmware:/usr/pkg/libdata/firmware:\
                  /usr/pkg/libdata";
        reg(
            m,
            &["hw", "firmware"],
            Spec::string("path", None, fw, 1025).flags(RW),
        );
    }
    kern_dynamic(m);
    if cfg.vfs {
        vfs_nodes(m, cfg);
    }
    if cfg.dev {
        // subr_autoconf.c's `sysctl_detach_setup` (rumpdev's autoconf), before the posix
        // nodes. Stored only: this kernel's halt has no devices that refuse to detach.
        reg(
            m,
            &["kern"],
            Spec::boolean("detachall", None, false).flags(PRW),
        );
    }
    reg(m, &["kern"], Spec::node("posix", None).flags(0));
    reg(
        m,
        &["kern", "posix"],
        Spec::int("semmax", None, 128).flags(RW),
    );
    reg(m, &["kern", "posix"], Spec::int("semcnt", None, 0).flags(0));
    reg(m, &["security"], Spec::node("models", None).flags(0));
    reg(
        m,
        &["security", "models"],
        Spec::node("suser", None).flags(0),
    );
    let name = Spec::text("name", None, "Traditional NetBSD: Superuser").flags(0);
    reg(m, &["security", "models", "suser"], name);
}

fn kern_static(m: &Mib, cfg: &BootConfig, rel: &str) {
    let k = &["kern"][..];
    reg(m, k, Spec::text("ostype", Some(1), crate::OSTYPE));
    reg(m, k, Spec::text("osrelease", Some(2), rel));
    reg(
        m,
        k,
        Spec::int("osrevision", Some(3), osrevision(rel)).immediate(),
    );
    let version = format!("NetBSD {rel} (RUMP-ROAST)\n");
    reg(m, k, Spec::text("version", Some(4), &version));
    let host = Spec::string("hostname", Some(10), &cfg.hostname, MAXHOSTNAMELEN);
    reg(m, k, host.flags(PRW));
    // struct clockinfo: hz, tick, tickadj, stathz, profhz.
    let clock: Vec<u8> = [HZ as i32, 10_000, 40, 1, 1]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    reg(m, k, Spec::bytes("clockrate", Some(12), clock).flags(0));
    reg(m, k, Spec::node("proc", Some(14)).flags(0));
    let unsupported = |_: &Env<'_>| -> Result<Vec<u8>> { Err(Errno::EOPNOTSUPP) };
    let file = Spec::func("file", Some(15), CTLTYPE_STRUCT, 0, unsupported);
    reg(m, k, file.flags(0));
    let dom = Spec::string("domainname", Some(22), "", MAXHOSTNAMELEN);
    reg(m, k, dom.flags(PRW));
    reg(m, k, Spec::int("rawpartition", Some(24), 3).immediate());
    reg(m, k, Spec::int("msgbufsize", Some(31), 16352));
    reg(m, k, Spec::node("proc2", Some(47)).flags(0));
    reg(m, k, Spec::node("proc_args", Some(48)).flags(0));
    reg(
        m,
        k,
        Spec::func("msgbuf", Some(53), CTLTYPE_INT, 4, unsupported),
    );
    reg(m, k, Spec::node("pipe", Some(56)));
    let pipe = &["kern", "pipe"][..];
    reg(m, pipe, Spec::int("maxkvasz", Some(1), 8 << 20).flags(PRW));
    reg(
        m,
        pipe,
        Spec::int("maxloankvasz", Some(2), 16 << 20).flags(PRW),
    );
    reg(m, pipe, Spec::int("maxbigpipes", Some(3), 32).flags(PRW));
    reg(m, pipe, Spec::int("nbigpipes", Some(4), 0));
    reg(m, pipe, Spec::int("kvasize", Some(5), 0));
    let urandom = Spec::func("urandom", Some(61), CTLTYPE_INT, 4, |e| Ok(random(e, 4)));
    reg(m, k, urandom.flags(0));
    let file2 = Spec::func("file2", Some(77), CTLTYPE_STRUCT, 0, unsupported);
    reg(m, k, file2.flags(0));
    let ticks = Spec::func("hardclock_ticks", Some(80), CTLTYPE_INT, 4, |e| {
        let up = e.k.uptime();
        // Ticks count from boot, not from the uptime's one-second origin.
        let t = (up.sec - crate::kern::UPTIME_ORIGIN_SEC) * HZ + up.nsec / (1_000_000_000 / HZ);
        Ok((t as i32).to_le_bytes().to_vec())
    });
    reg(m, k, ticks.flags(0));
    reg(
        m,
        k,
        Spec::func("arandom", Some(81), CTLTYPE_INT, 4, arandom).flags(0),
    );
    let evcnt = Spec::func("evcnt", Some(84), CTLTYPE_STRUCT, 0, |_| Err(Errno::EINVAL));
    reg(m, k, evcnt);
}

fn hw_static(m: &Mib, cfg: &BootConfig) {
    let hw = &["hw"][..];
    let ncpu = cfg.ncpu as i32;
    let mem = physmem(cfg);
    reg(m, hw, Spec::text("machine", Some(1), crate::MACHINE));
    reg(m, hw, Spec::text("model", Some(2), "rumpcore (virtual)"));
    let int = move |_: &Env<'_>| Ok(ncpu.to_le_bytes().to_vec());
    reg(m, hw, Spec::func("ncpu", Some(3), CTLTYPE_INT, 4, int));
    reg(m, hw, Spec::int("byteorder", Some(4), 1234).immediate());
    let mem32 = mem.min(i32::MAX as u64) as i32;
    reg(m, hw, Spec::int("physmem", Some(5), mem32).immediate());
    reg(m, hw, Spec::int("pagesize", Some(7), 4096).immediate());
    let empty = |_: &Env<'_>| Ok(Vec::new());
    reg(
        m,
        hw,
        Spec::func("disknames", Some(8), CTLTYPE_STRING, 0, empty),
    );
    reg(
        m,
        hw,
        Spec::func("iostats", Some(9), CTLTYPE_STRUCT, 0, empty),
    );
    reg(m, hw, Spec::text("machine_arch", Some(10), "x86_64"));
    reg(m, hw, Spec::int("alignbytes", Some(11), 7).immediate());
    reg(m, hw, Spec::quad("physmem64", Some(13), mem).immediate());
    reg(
        m,
        hw,
        Spec::func("iostatnames", Some(15), CTLTYPE_STRING, 0, empty),
    );
    reg(
        m,
        hw,
        Spec::func("ncpuonline", Some(16), CTLTYPE_INT, 4, int),
    );
}

fn proc_curproc(m: &Mib) {
    let cur = Spec::node("curproc", Some(PROC_CURPROC)).flags(CTLFLAG_ANYNUMBER);
    reg(m, &["proc"], cur);
    let cp = &["proc", "curproc"][..];
    let corename = Spec::func("corename", Some(1), CTLTYPE_STRING, 1024, |e| {
        target_proc(e)?;
        Ok(b"rumpdump".to_vec())
    });
    reg(m, cp, corename.flags(ANYRW));
    reg(m, cp, Spec::node("rlimit", Some(2)).flags(0));
    for (i, name) in RLIMIT_NAMES.into_iter().enumerate() {
        reg(
            m,
            &["proc", "curproc", "rlimit"],
            Spec::node(name, Some(i as i32 + 1)).flags(0),
        );
        let at = ["proc", "curproc", "rlimit", name];
        let which = i as u32;
        for (half, num, hard) in [("soft", 1, false), ("hard", 2, true)] {
            let read = move |e: &Env<'_>| plimit_read(e, which, hard);
            let write = move |e: &Env<'_>, d: &[u8]| plimit_write(e, which, hard, d);
            let spec = Spec::func_rw(half, Some(num), CTLTYPE_QUAD, 8, read, write);
            reg(m, &at, spec.flags(ANYRW));
        }
    }
    for (name, num) in [("stopfork", 3), ("stopexec", 4), ("stopexit", 5)] {
        let f = |e: &Env<'_>| {
            target_proc(e)?;
            Ok(0i32.to_le_bytes().to_vec())
        };
        reg(
            m,
            cp,
            Spec::func(name, Some(num), CTLTYPE_INT, 4, f).flags(ANYRW),
        );
    }
}

fn kern_dynamic(m: &Mib) {
    let k = &["kern"][..];
    reg(m, k, Spec::node("timecounter", None));
    let tc = &["kern", "timecounter"][..];
    let choice = |_: &Env<'_>| Ok(b"host(q=1000, f=1000000000 Hz)".to_vec());
    reg(m, tc, Spec::func("choice", None, CTLTYPE_STRING, 0, choice));
    let hw = |_: &Env<'_>| Ok(b"host".to_vec());
    reg(
        m,
        tc,
        Spec::func("hardware", None, CTLTYPE_STRING, 64, hw).flags(PRW),
    );
    reg(m, tc, Spec::int("timestepwarnings", None, 0).flags(PRW));
    let pool = |_: &Env<'_>| Err(Errno::EOPNOTSUPP);
    reg(m, k, Spec::func("pool", None, CTLTYPE_STRUCT, 0, pool));
    reg(m, k, Spec::int("direct_select", None, 0).flags(PRW));
    reg(m, k, Spec::node("uidinfo", None).flags(0));
    let ui = &["kern", "uidinfo"][..];
    let clients = |e: &Env<'_>| {
        let uid = e.p.cred().uid;
        e.k.all_procs()
            .iter()
            .filter(|p| p.cred().uid == uid)
            .count() as u64
    };
    // The caller's uid's processes: its clients, and for root also proc0 and init, as
    // NetBSD's rump kernel counts them (3 for one root client).
    let procs = move |e: &Env<'_>| {
        let kernel = if e.p.cred().uid == 0 { 2 } else { 0 };
        Ok((clients(e) + kernel).to_le_bytes().to_vec())
    };
    reg(
        m,
        ui,
        Spec::func("proccnt", None, CTLTYPE_QUAD, 8, procs).flags(0),
    );
    // One LWP per client process; this kernel has no kernel threads for NetBSD's count.
    let lwps = move |e: &Env<'_>| Ok(clients(e).to_le_bytes().to_vec());
    reg(
        m,
        ui,
        Spec::func("lwpcnt", None, CTLTYPE_QUAD, 8, lwps).flags(0),
    );
    let locks = |e: &Env<'_>| {
        let n = e.k.locks().uid_records(e.p.cred().euid) as u64;
        Ok(n.to_le_bytes().to_vec())
    };
    reg(
        m,
        ui,
        Spec::func("lockcnt", None, CTLTYPE_QUAD, 8, locks).flags(0),
    );
    reg(m, ui, Spec::quad("sbsize", None, 0).flags(0));
    reg(m, k, Spec::node("module", None).flags(0));
    let md = &["kern", "module"][..];
    reg(m, md, Spec::boolean("autoload", None, false).flags(RW));
    reg(m, md, Spec::boolean("verbose", None, false).flags(RW));
    let path = format!("/stand/{}/{}/modules", crate::MACHINE, crate::OSRELEASE);
    reg(m, md, Spec::text("path", None, &path).flags(0));
    reg(m, md, Spec::int("autotime", None, 10).flags(RW));
}

/// The file-system types the kernel has, as `vfs.generic.fstypes` lists them.
fn fstypes(e: &Env<'_>) -> Result<Vec<u8>> {
    let names: Vec<&str> = FsKind::ALL
        .into_iter()
        .filter(|t| *t == FsKind::Rumpfs || e.k.has_filesystem(*t))
        .map(|t| t.name())
        .collect();
    Ok(names.join(" ").into_bytes())
}

fn vfs_nodes(m: &Mib, cfg: &BootConfig) {
    let g = &["vfs", "generic"][..];
    reg(
        m,
        g,
        Spec::func("fstypes", None, CTLTYPE_STRING, 0, fstypes).flags(0),
    );
    reg(m, &["vfs"], Spec::node("sync", None));
    for (name, v) in [
        ("delay", 30),
        ("filedelay", 30),
        ("dirdelay", 15),
        ("metadelay", 10),
    ] {
        reg(m, &["vfs", "sync"], Spec::quad(name, None, v).flags(PRW));
    }
    // No name cache: its statistics (struct nchstats, 10 counters) stay zero.
    let nch = |_: &Env<'_>| Ok(vec![0u8; 80]);
    reg(
        m,
        &["vfs"],
        Spec::func("namecache_stats", None, CTLTYPE_STRUCT, 0, nch).flags(0),
    );
    reg(m, g, Spec::node("dirhash", None).flags(0));
    let dh = &["vfs", "generic", "dirhash"][..];
    reg(m, dh, Spec::int("memused", None, 0).flags(0));
    reg(m, dh, Spec::int("maxmem", None, 1 << 20).flags(RW));
    reg(m, &["vfs"], Spec::node("wapbl", None).flags(0));
    let w = &["vfs", "wapbl"][..];
    reg(m, w, Spec::int("flush_disk_cache", None, 1).flags(RW));
    reg(m, w, Spec::int("verbose_commit", None, 0).flags(RW));
    // Each loaded file system's own nodes (ffs_vfsops.c's `vfs.ffs`, …).
    crate::fs::sysctl_nodes(m, &cfg.filesystems);
    let vm = &["vm"][..];
    reg(m, vm, Spec::int("bufcache", None, 15).flags(RW));
    reg(m, vm, Spec::quad("bufmem", None, 0).flags(0));
    let hiwater = cfg
        .mem_limit_bytes
        .map_or(crate::bio::DEFAULT_CACHE_BYTES, |l| l / 2);
    reg(
        m,
        vm,
        Spec::quad("bufmem_lowater", None, hiwater / 8).flags(RW),
    );
    reg(m, vm, Spec::quad("bufmem_hiwater", None, hiwater).flags(RW));
}

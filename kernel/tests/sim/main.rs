//! Deterministic simulation of the kernel under many clients (issue 8, item 5): seeded random
//! interleavings of concurrent syscalls, client copy answers, disconnects and host-file faults,
//! checked against a model and the kernel's own counters.
//!
//! One seed = one world: a kernel booted with the VFS and a memory budget, three etfs keys over
//! simulated host files (`/dk` block device through the buffer cache, `/rf` regular file, `/rc`
//! raw device) and a set of *slots* — sequential threads of syscalls, grouped into clients
//! (processes). Every slot owns a byte range of each shared object and a private directory, so
//! the model of what it may read back is exact even while everything runs concurrently.
//! The scheduler (`sched.rs`) picks, at each step, a random woken task or a random pending
//! completion (a copy answer, a host read/write/sync), and now and then disconnects a client
//! the way the session does (`Kernel::begin_exit`, pending copies fail with `EFAULT`, the
//! process exits once its in-flight calls are done). A disconnected client's slots are taken
//! over by a new client.
//!
//! Checked: every result against the model (file data, sizes, link counts, names); an
//! `fsync` that succeeded put the slot's bytes on the host file; locks exclude each other;
//! after the run — faults off, a final sync, a read-back of everything and a cleanup — no
//! process, descriptor, lock, dirty buffer, vnode or budget byte is left over, and the host
//! files equal the model.
//!
//! In half the seeds (`Cfg::ffs`) `/sim` is an FFS mount: a fresh UFS2 image on a fourth
//! etfs block device, so the slots' files, the shared file and the lock files live on one
//! FFS mount whose operations interleave at every host read and write the scheduler
//! delays; after the final check it is unmounted and `ffs::check` must find the image
//! clean (issue 13: FFS locks per vnode, not per mount).
//!
//! Beside the slots run hostile clients (`hostile.rs`, issue 19): deep trees, chroot without
//! chdir, privileged calls after a privilege drop, and a phase of budget floods (knotes too).
//! Slots also poll, select and kevent on pipes; the host's sleeps are gates (`SimHost`).
//!
//! `RUMP_SIM_SEEDS=n` runs n seeds (default: a few for CI), `RUMP_SIM_SEED=s` one seed,
//! `RUMP_SIM_BASE=b` starts at another seed. A failure prints the seed to rerun.

mod hostile;
mod ops;
mod sched;
mod world;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use kernel::fs::rumpfs::etfs::EtfsType;
use kernel::hostio::{FaultConfig, MemFile};
use kernel::mem::Reclaim;
use kernel::{BootConfig, Errno, Host, Kernel, Proc};

use ops::{Obj, Slot};
use sched::{Exec, Rng};
use world::{SimFile, SimMem};

/// The objects every slot owns a range of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Region {
    /// `/sim/shared`, a rumpfs file.
    Shared,
    /// `/dk`, etfs block device (buffer cache).
    Blk,
    /// `/rf`, etfs regular file.
    Reg,
    /// `/rc`, etfs raw device (512-byte units).
    Chr,
}

impl Region {
    /// All of them.
    pub const ALL: [Region; 4] = [Region::Shared, Region::Blk, Region::Reg, Region::Chr];

    /// Index into the world's tables.
    pub fn idx(self) -> usize {
        self as usize
    }

    /// Bytes per slot.
    pub fn per_slot(self) -> usize {
        // Not multiples of the cache's 4 KiB blocks: neighbouring slots share a block, so
        // fills, writes and write-backs of one block race between clients.
        match self {
            Region::Shared => (16 << 10) + 100,
            Region::Blk => (160 << 10) + 1000,
            Region::Reg => (32 << 10) + 7,
            Region::Chr => (32 << 10) + 512,
        }
    }

    /// Path in the rump namespace.
    pub fn path(self) -> &'static str {
        match self {
            Region::Shared => "/sim/shared",
            Region::Blk => "/dk",
            Region::Reg => "/rf",
            Region::Chr => "/rc",
        }
    }
}

/// A model byte: known value, or unknown after a write that failed part-way.
pub type Byte = Option<u8>;

/// A private file's model.
#[derive(Clone, Default)]
pub struct FileModel {
    pub data: Vec<Byte>,
    /// Size and contents unknown (a failed truncate or write); no checks until recreated.
    pub uncertain: bool,
}

/// What one slot knows, surviving the client that runs it.
#[derive(Default)]
pub struct SlotState {
    pub ops_left: u32,
    /// Descriptors this slot holds open in its current client.
    pub held: Vec<(i32, Obj)>,
    /// Private names (`a`, `b`, `c`) → inode index.
    pub names: std::collections::BTreeMap<&'static str, usize>,
    pub inodes: Vec<FileModel>,
    pub has_dir: bool,
    pub has_link: bool,
    /// Ranges a write in flight may change (unknown if its future is dropped).
    pub pending: Vec<(Region, usize, usize)>,
    /// The private file a write or truncate in flight may change.
    pub pending_ino: Option<usize>,
}

/// Per-seed parameters.
#[derive(Clone, Debug)]
pub struct Cfg {
    pub seed: u64,
    pub slots: usize,
    pub ops_per_slot: u32,
    /// Disconnect chance per scheduler step, out of 100 000.
    pub disconnect_rate: u64,
    pub faults: FaultConfig,
    pub mem_limit: Option<u64>,
    /// Disconnects may also drop the client's syscall futures where they stand.
    pub cancel: bool,
    /// `/sim` is an FFS mount (a fresh UFS2 image on the etfs block device `/ffsdev`,
    /// whose host file has no faults, see `with_ffs`) instead of a directory of the root file
    /// system: every slot's files,
    /// the shared file and the lock files live on one FFS mount, locked per vnode.
    pub ffs: bool,
}

impl Cfg {
    fn from_seed(seed: u64) -> Cfg {
        let mut r = Rng::new(seed);
        let faulty = r.chance(2, 3);
        Cfg {
            seed,
            slots: r.range(3, 10) as usize,
            ops_per_slot: r.range(30, 90) as u32,
            disconnect_rate: [0, 100, 300, 1000][r.below(4) as usize],
            faults: FaultConfig {
                seed: r.next(),
                eio: if faulty { r.range(0, 400) as u32 } else { 0 },
                enospc: if faulty { r.range(0, 200) as u32 } else { 0 },
                short: if faulty { r.range(0, 1500) as u32 } else { 0 },
            },
            mem_limit: [Some(2 << 20), Some(3 << 20), Some(6 << 20), None][r.below(4) as usize],
            cancel: r.chance(1, 3),
            ffs: false,
        }
        .with_ffs(r.chance(1, 2))
    }

    /// With `ffs`, no dropped syscall futures: an FFS operation is not cancel-safe (one
    /// dropped between allocating a block and writing the inode leaks the block, as a
    /// crash would), and the server never drops one (a disconnected client's calls run to
    /// their end). Host faults stay on for the other devices (the FFS image's own host
    /// file has none: a failed write-back of FFS metadata is a crash the model cannot
    /// predict). The buffer cache is shared, so an FFS access may have to evict another
    /// device's dirty block whose write fails; the cache then tries other victims
    /// (`VICTIM_TRIES`) instead of failing the FFS access with that device's error (seeds
    /// 12 and 273 met it before).
    fn with_ffs(mut self, ffs: bool) -> Cfg {
        self.ffs = ffs;
        self.cancel &= !ffs;
        self
    }
}

/// One client process.
pub struct Client {
    pub id: u64,
    pub p: Arc<Proc>,
    pub mem: Rc<SimMem>,
    pub slots: Vec<usize>,
    pub dead: Cell<bool>,
    /// Executor ids of the slot tasks.
    tasks: RefCell<Vec<usize>>,
    running: Cell<usize>,
    done: RefCell<Option<std::task::Waker>>,
}

/// Counters for the summary line.
#[derive(Default, Clone, Copy, Debug)]
pub struct Counts {
    pub syscalls: u64,
    pub errors: u64,
    pub disconnects: u64,
    pub clients: u64,
    pub fsync_checks: u64,
    pub steps: u64,
    /// Buffer-cache evictions during the run.
    pub evictions: u64,
    /// Disconnects that dropped the client's futures.
    pub cancels: u64,
    /// Levels of the hostile deep chains.
    pub deep_levels: u64,
    /// Items the hostile floods made.
    pub flood_items: u64,
}

/// Everything one seed's run shares.
pub struct World {
    pub cfg: Cfg,
    pub k: Arc<Kernel>,
    pub exec: Exec,
    pub rng: RefCell<Rng>,
    pub slots: Vec<RefCell<SlotState>>,
    /// The models of the shared objects, by `Region::idx`.
    pub models: Vec<RefCell<Vec<Byte>>>,
    /// Host files of Blk, Reg, Chr (index 0 unused).
    pub hosts: Vec<Option<(Arc<SimFile>, Arc<MemFile>)>>,
    /// With `cfg.ffs`, the host file of the FFS image.
    pub ffs_image: Option<Arc<MemFile>>,
    pub clients: RefCell<Vec<Rc<Client>>>,
    next_client: Cell<u64>,
    /// Pid holding the POSIX lock on `/sim/lockf`, as far as the slots know.
    pub posix_holder: Cell<Option<i32>>,
    /// Slot holding the flock on `/sim/flockf`.
    pub flock_holder: Cell<Option<usize>>,
    pub counts: Cell<Counts>,
    trace: Cell<u64>,
    /// Print every syscall (`RUMP_SIM_TRACE=1`).
    pub verbose: bool,
}

impl World {
    /// Adds one syscall result to the trace hash and the counters.
    pub fn record(&self, slot: usize, nr: u32, r: &Result<[i64; 2], Errno>) {
        if self.verbose {
            eprintln!("slot {slot}: syscall {nr} -> {r:?}");
        }
        let v = match r {
            Ok(rv) => rv[0] as u64,
            Err(e) => 0xe000_0000 | u64::from(e.raw()),
        };
        let h = self.trace.get().rotate_left(5) ^ (slot as u64) << 48 ^ u64::from(nr) << 32 ^ v;
        self.trace.set(h.wrapping_mul(0x100_0000_01b3));
        let mut c = self.counts.get();
        c.syscalls += 1;
        c.errors += u64::from(r.is_err());
        self.counts.set(c);
    }

    /// `[start, start + len)` of `r` owned by slot `id`.
    pub fn region(&self, r: Region, id: usize) -> (usize, usize) {
        (id * r.per_slot(), r.per_slot())
    }

    /// Changes the counters.
    pub fn bump(&self, f: impl FnOnce(&mut Counts)) {
        let mut c = self.counts.get();
        f(&mut c);
        self.counts.set(c);
    }
}

/// A host whose clocks never touch the real time (determinism): the monotonic clock steps
/// 1 ms per reading, and a sleep (poll, select and kevent timeouts, kqueue timers) is a
/// host gate that, once the scheduler opens it, moves the clock to the sleep's end.
#[derive(Default)]
struct SimHost {
    mono_ns: Arc<std::sync::Mutex<i64>>,
}

impl Host for SimHost {
    fn console_write(&self, _data: &[u8]) {}

    fn clock_realtime(&self) -> (i64, i64) {
        (1_700_000_000, 0)
    }

    fn clock_monotonic(&self) -> (i64, i64) {
        let mut ns = self.mono_ns.lock().unwrap();
        *ns += 1_000_000;
        (*ns / 1_000_000_000, *ns % 1_000_000_000)
    }

    fn random(&self, buf: &mut [u8]) {
        buf.fill(0x5a);
    }

    fn sleep(&self, d: std::time::Duration) -> kernel::sync::HostSleep {
        let clock = self.mono_ns.clone();
        let end = (*clock.lock().unwrap())
            .saturating_add(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        Box::pin(async move {
            sched::gate(sched::HOST).await;
            let mut ns = clock.lock().unwrap();
            *ns = (*ns).max(end);
        })
    }
}

/// Memory layout of one slot in its client's address space.
pub const SLOT_MEM: u64 = 0x10_0000_0000;
/// Bytes mapped per slot.
pub const SLOT_MAP: usize = 0x1000 + (192 << 10);

fn start_client(w: &Rc<World>, slots: Vec<usize>) {
    let id = w.next_client.get();
    w.next_client.set(id + 1);
    w.bump(|c| c.clients += 1);
    let p = w.k.spawn_guest(b"sim").expect("spawn_guest");
    let mem = Rc::new(SimMem::new(id));
    for local in 0..slots.len() {
        mem.map(SLOT_MEM * (local as u64 + 1), SLOT_MAP);
    }
    let c = Rc::new(Client {
        id,
        p,
        mem,
        running: Cell::new(slots.len()),
        slots,
        dead: Cell::new(false),
        tasks: RefCell::new(Vec::new()),
        done: RefCell::new(None),
    });
    w.clients.borrow_mut().push(c.clone());
    for (local, &sid) in c.slots.iter().enumerate() {
        let s = Slot {
            w: w.clone(),
            c: c.clone(),
            id: sid,
            local,
            base: SLOT_MEM * (local as u64 + 1),
        };
        let g = SlotGuard {
            w: w.clone(),
            c: c.clone(),
            id: sid,
        };
        let t = w.exec.spawn(format!("client {id} slot {sid}"), async move {
            let _g = g;
            s.run().await;
        });
        c.tasks.borrow_mut().push(t);
    }
    let w2 = w.clone();
    w.exec.spawn(format!("client {id} teardown"), async move {
        std::future::poll_fn(|cx| {
            if c.running.get() == 0 {
                std::task::Poll::Ready(())
            } else {
                *c.done.borrow_mut() = Some(cx.waker().clone());
                std::task::Poll::Pending
            }
        })
        .await;
        teardown(&w2, &c);
    });
}

/// Ends a slot task, also when its future is dropped: what a cancelled write may have
/// changed becomes unknown.
struct SlotGuard {
    w: Rc<World>,
    c: Rc<Client>,
    id: usize,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let mut st = self.w.slots[self.id].borrow_mut();
        for (r, off, len) in std::mem::take(&mut st.pending) {
            self.w.models[r.idx()].borrow_mut()[off..off + len].fill(None);
        }
        if let Some(i) = st.pending_ino.take() {
            st.inodes[i].uncertain = true;
        }
        drop(st);
        self.c.running.set(self.c.running.get() - 1);
        if let Some(wk) = self.c.done.borrow_mut().take() {
            wk.wake();
        }
    }
}

/// All slots of `c` are done: check its descriptors, end the process, hand its slots on.
fn teardown(w: &Rc<World>, c: &Rc<Client>) {
    let held: usize = c
        .slots
        .iter()
        .map(|&s| w.slots[s].borrow().held.len())
        .sum();
    if !c.dead.get() {
        // A client that was never cut off knows exactly what it holds: 0–2 plus its own.
        assert_eq!(
            c.p.fd_count(),
            3 + held,
            "client {} holds descriptors nobody opened (or lost some)",
            c.id
        );
    }
    w.k.exit_process(&c.p);
    assert_eq!(c.p.fd_count(), 0, "exit left descriptors");
    w.clients.borrow_mut().retain(|x| x.id != c.id);
    for &s in &c.slots {
        w.slots[s].borrow_mut().held.clear();
    }
    let left: Vec<usize> = c
        .slots
        .iter()
        .copied()
        .filter(|&s| w.slots[s].borrow().ops_left > 0)
        .collect();
    if !left.is_empty() {
        start_client(w, left);
    }
}

/// The session's disconnect: copies fail, sleeps end with `EINTR`, the process exits once
/// its slots return.
fn disconnect(w: &World, rng: &mut Rng) {
    let live: Vec<Rc<Client>> = w
        .clients
        .borrow()
        .iter()
        .filter(|c| !c.dead.get())
        .cloned()
        .collect();
    if live.is_empty() {
        return;
    }
    let c = &live[rng.below(live.len() as u64) as usize];
    c.dead.set(true);
    c.mem.kill();
    sched::fail_owner(c.id);
    w.k.begin_exit(&c.p);
    if w.cfg.cancel && rng.chance(1, 2) {
        // Not what the session does (it lets in-flight calls finish), but the kernel's
        // futures promise to be safe to drop at any await.
        for &t in c.tasks.borrow().iter() {
            w.exec.cancel(t);
        }
        w.bump(|n| n.cancels += 1);
    }
    if w.posix_holder.get() == Some(c.p.pid()) {
        w.posix_holder.set(None);
    }
    if w.flock_holder.get().is_some_and(|s| c.slots.contains(&s)) {
        w.flock_holder.set(None);
    }
    w.bump(|n| n.disconnects += 1);
}

/// The etfs key of the FFS image (`Cfg::ffs`) and its size.
pub const FFS_DEV: &str = "/ffsdev";
const FFS_IMAGE_BYTES: usize = 48 << 20;

fn boot(cfg: &Cfg) -> World {
    let bc = BootConfig {
        ncpu: 2,
        verbose: false,
        hostname: "rump-sim".into(),
        vfs: true,
        mem_limit_bytes: cfg.mem_limit,
        filesystems: kernel::fs::FsKind::ALL.to_vec(),
        dev: false,
    };
    let k = Kernel::boot(bc, Arc::new(SimHost::default())).expect("boot");
    // Device ids pick the cache shard of each block; vary them by seed (a fresh process
    // starts them at 1), so that seeds also try different shard layouts.
    let spare: Arc<dyn kernel::hostio::HostFile> = Arc::new(MemFile::new(Vec::new()));
    for _ in 0..cfg.seed % 61 {
        drop(kernel::bio::BDev::new(spare.clone(), 0, 0));
    }
    let mut hosts = vec![None];
    for r in [Region::Blk, Region::Reg, Region::Chr] {
        let (f, m) = SimFile::new(r.per_slot() * cfg.slots, cfg.faults);
        let t = match r {
            Region::Blk => EtfsType::Blk,
            Region::Reg => EtfsType::Reg,
            _ => EtfsType::Chr,
        };
        k.etfs_register(r.path().as_bytes(), f.clone(), t, 0, None)
            .expect("etfs_register");
        hosts.push(Some((f, m)));
    }
    let ffs_image = cfg.ffs.then(|| {
        let image = ffs::MemDisk::new(FFS_IMAGE_BYTES);
        ffs::block_on(ffs::newfs(&image, &ffs::NewfsOptions::default())).expect("newfs");
        let (f, m) = SimFile::holding(image.to_vec(), FaultConfig::default());
        k.etfs_register(FFS_DEV.as_bytes(), f, EtfsType::Blk, 0, None)
            .expect("etfs_register");
        m
    });
    let models = Region::ALL
        .iter()
        .map(|r| {
            // Fresh host files and the fresh shared file are all zeros.
            RefCell::new(vec![Some(0); r.per_slot() * cfg.slots])
        })
        .collect();
    World {
        k,
        exec: Exec::default(),
        rng: RefCell::new(Rng::new(cfg.seed.wrapping_mul(0x2545_f491_4f6c_dd1d))),
        slots: (0..cfg.slots)
            .map(|_| {
                RefCell::new(SlotState {
                    ops_left: cfg.ops_per_slot,
                    ..SlotState::default()
                })
            })
            .collect(),
        models,
        hosts,
        ffs_image,
        clients: RefCell::new(Vec::new()),
        next_client: Cell::new(1),
        posix_holder: Cell::new(None),
        flock_holder: Cell::new(None),
        counts: Cell::new(Counts::default()),
        trace: Cell::new(0),
        verbose: std::env::var_os("RUMP_SIM_TRACE").is_some(),
        cfg: cfg.clone(),
    }
}

/// Leak counters of the kernel: root-mount vnodes and budget bytes.
fn leak_counters(k: &Kernel) -> (u64, u64) {
    let vfs = k.vfs().expect("vfs");
    (vfs.root_mount().state().nodes(), k.budget().used())
}

/// What one run ends with.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub trace: u64,
    pub counts: Counts,
}

/// Runs one seed to the end and checks every invariant (panics on a violation).
pub fn run_seed(seed: u64) -> Outcome {
    sched::reset_gates();
    let cfg = Cfg::from_seed(seed);
    let w = Rc::new(boot(&cfg));
    let base = leak_counters(&w.k);
    let max_steps = 2_000_000;

    // Set-up, fault-free and not disconnected.
    set_faults(&w, false);
    let w2 = w.clone();
    w.exec
        .spawn("setup".into(), async move { ops::setup(&w2).await });
    w.exec.run(&w.rng, max_steps, |_| {});

    // The run.
    set_faults(&w, true);
    let mut groups = Vec::new();
    let mut next = 0;
    while next < cfg.slots {
        let n = (w.rng.borrow_mut().range(1, 4) as usize).min(cfg.slots - next);
        groups.push((next..next + n).collect::<Vec<_>>());
        next += n;
    }
    for g in groups {
        start_client(&w, g);
    }
    let plan = hostile::Plan::from_seed(seed, cfg.mem_limit);
    if w.verbose {
        eprintln!("hostile plan: {plan:?}");
    }
    hostile::spawn_attacks(&w, &plan);
    let rate = cfg.disconnect_rate;
    w.exec.run(&w.rng, max_steps, |rng| {
        if rate > 0 && rng.below(100_000) < rate {
            disconnect(&w, rng);
        }
    });
    assert_eq!(w.k.process_count(), 0, "processes left after the run");
    let evictions = w.k.vfs().unwrap().bio().stats().evictions;
    assert!(w.clients.borrow().is_empty());

    // The budget floods, alone (the budget is the whole kernel's).
    if let Some(f) = plan.flood {
        let w2 = w.clone();
        w.exec.spawn("hostile flood".into(), async move {
            hostile::flood(&w2, f).await
        });
        w.exec.run(&w.rng, max_steps, |_| {});
    }
    if plan.knotes {
        let w2 = w.clone();
        w.exec.spawn("hostile knote flood".into(), async move {
            hostile::knote_flood(&w2).await
        });
        w.exec.run(&w.rng, max_steps, |_| {});
    }

    // Faults off: sync, read everything back, clean up.
    set_faults(&w, false);
    let w2 = w.clone();
    w.exec.spawn(
        "final check".into(),
        async move { ops::final_check(&w2).await },
    );
    w.exec.run(&w.rng, max_steps, |_| {});

    // Nothing left over.
    let k = &w.k;
    assert_eq!(k.process_count(), 0, "processes leaked");
    assert_eq!(k.locks().objects(), 0, "advisory locks leaked");
    assert_eq!(sched::gates_pending(), 0, "completions nobody waits for");
    let bio = k.vfs().unwrap().bio().clone();
    assert_eq!(bio.stats().dirty, 0, "dirty buffers after the final sync");
    bio.reclaim(u64::MAX);
    let after = leak_counters(k);
    assert_eq!(after.0, base.0, "vnodes leaked (root mount node count)");
    assert_eq!(
        after.1, base.1,
        "budget bytes leaked (vnodes, file data or buffers)"
    );
    if hostile::flood_bounds_checked() {
        let b = k.budget();
        assert!(
            b.used_max() <= b.limit(),
            "budget {} over its limit",
            b.used_max()
        );
    }
    let mut counts = w.counts.get();
    counts.steps = w.exec.steps.get();
    counts.evictions = evictions;
    Outcome {
        trace: w.trace.get(),
        counts,
    }
}

fn set_faults(w: &World, on: bool) {
    for (f, _) in w.hosts.iter().flatten() {
        f.set_faults(on);
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?}: not a number"))
    })
}

/// Stack of the thread a seed runs on: a loop thread's (the default of `std::thread`), so
/// that a recursion as deep as a client's tree overflows here as it would in the server.
const SEED_STACK_BYTES: usize = 2 << 20;

/// Runs `seed` in this process, on a thread with [`SEED_STACK_BYTES`] of stack, turning a
/// panic into a message with the seed to rerun.
fn run_reported(seed: u64) -> Outcome {
    let t = std::thread::Builder::new()
        .name(format!("sim seed {seed}"))
        .stack_size(SEED_STACK_BYTES)
        .spawn(move || run_seed(seed))
        .expect("spawn the seed's thread");
    match t.join() {
        Ok(o) => o,
        Err(e) => {
            let cfg = Cfg::from_seed(seed);
            eprintln!(
                "simulation seed {seed} failed ({cfg:?}); rerun with \
                 RUMP_SIM_SEED={seed} cargo test -p rump-kernel --test sim -- --exact seeds \
                 (RUMP_SIM_TRACE=1 prints every syscall)"
            );
            std::panic::resume_unwind(e)
        }
    }
}

/// Runs `seed` in a fresh process (this test binary, test `child`): kernel-wide counters
/// (device and vnode ids, which pick cache shards) then start where a lone rerun starts.
fn spawn_seed(seed: u64) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "child", "--nocapture", "--test-threads=1", "-q"])
        .env("RUMP_SIM_CHILD", seed.to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the test binary")
}

/// Waits for a child run; its outcome, or a panic with its output.
fn reap(seed: u64, child: std::process::Child) -> Outcome {
    let out = child.wait_with_output().expect("wait");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find_map(|l| l.strip_prefix("SIM-OUTCOME "));
    match (out.status.success(), line) {
        (true, Some(l)) => {
            let v: Vec<u64> = l.split(' ').map(|x| x.parse().expect("number")).collect();
            Outcome {
                trace: v[0],
                counts: Counts {
                    syscalls: v[1],
                    errors: v[2],
                    disconnects: v[3],
                    clients: v[4],
                    fsync_checks: v[5],
                    steps: v[6],
                    evictions: v[7],
                    cancels: v[8],
                    deep_levels: v[9],
                    flood_items: v[10],
                },
            }
        }
        _ => panic!(
            "simulation seed {seed} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            text
        ),
    }
}

/// One seed per process, `RUMP_SIM_JOBS` at a time; all outcomes by seed.
fn run_many(seeds: impl Iterator<Item = u64>, jobs: usize) -> Vec<(u64, Outcome)> {
    let mut running = std::collections::VecDeque::new();
    let mut done = Vec::new();
    for seed in seeds {
        if running.len() >= jobs.max(1) {
            let (s, c) = running.pop_front().unwrap();
            done.push((s, reap(s, c)));
        }
        running.push_back((seed, spawn_seed(seed)));
    }
    for (s, c) in running {
        done.push((s, reap(s, c)));
    }
    done
}

/// The child side of [`spawn_seed`]; does nothing unless started by it.
#[test]
fn child() {
    let Some(seed) = env_u64("RUMP_SIM_CHILD") else {
        return;
    };
    let o = run_reported(seed);
    let c = o.counts;
    println!(
        "SIM-OUTCOME {} {} {} {} {} {} {} {} {} {} {}",
        o.trace,
        c.syscalls,
        c.errors,
        c.disconnects,
        c.clients,
        c.fsync_checks,
        c.steps,
        c.evictions,
        c.cancels,
        c.deep_levels,
        c.flood_items
    );
}

/// The CI run: a few seeds (`RUMP_SIM_SEEDS=n` for more, `RUMP_SIM_BASE` to start
/// elsewhere, `RUMP_SIM_JOBS` processes at once); `RUMP_SIM_SEED=s` runs one in-process.
#[test]
fn seeds() {
    if let Some(seed) = env_u64("RUMP_SIM_SEED") {
        let o = run_reported(seed);
        eprintln!("sim seed {seed}: {o:?} ({:?})", Cfg::from_seed(seed));
        return;
    }
    let n = env_u64("RUMP_SIM_SEEDS").unwrap_or(24);
    let base = env_u64("RUMP_SIM_BASE").unwrap_or(0);
    let jobs = env_u64("RUMP_SIM_JOBS").unwrap_or(1) as usize;
    let t0 = Instant::now();
    let mut total = Counts::default();
    for (_, o) in run_many(base..base + n, jobs) {
        let c = o.counts;
        total.syscalls += c.syscalls;
        total.errors += c.errors;
        total.disconnects += c.disconnects;
        total.clients += c.clients;
        total.fsync_checks += c.fsync_checks;
        total.steps += c.steps;
        total.evictions += c.evictions;
        total.cancels += c.cancels;
        total.deep_levels += c.deep_levels;
        total.flood_items += c.flood_items;
    }
    eprintln!(
        "sim: {n} seeds from {base} in {:.1?}: {} syscalls ({} errors), {} clients, {} \
         disconnects ({} cancelling), {} fsync checks, {} evictions, {} steps; hostile: {} \
         deep-chain levels, {} flood items",
        t0.elapsed(),
        total.syscalls,
        total.errors,
        total.clients,
        total.disconnects,
        total.cancels,
        total.fsync_checks,
        total.evictions,
        total.steps,
        total.deep_levels,
        total.flood_items
    );
}

#[test]
fn a_seed_replays_exactly() {
    let runs = run_many([7, 7, 8].into_iter(), 1);
    assert_eq!(runs[0].1.trace, runs[1].1.trace, "seed 7 twice: {runs:?}");
    assert_ne!(
        runs[0].1.trace, runs[2].1.trace,
        "seeds 7 and 8 alike: {runs:?}"
    );
    assert!(runs[0].1.counts.syscalls > 100);
}

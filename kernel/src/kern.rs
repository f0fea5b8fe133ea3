//! The kernel object: boot, the process lifecycle the sp session drives, and shutdown.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::abi::NODEV;
use crate::abi::{Timespec, CMASK, FWRITE, MAXLOGNAME, RB_DUMP, RB_NOSYNC};
use crate::file::{Console, File, FileKind};
use crate::fs::rumpfs::etfs::EtfsType;
use crate::lock::Locks;
use crate::mem::Budget;
use crate::proc::{Cred, FdTable, PidTable, Proc, INIT_PID};
use crate::sys::{self, SyscallOutcome};
use crate::vfs::{Attr, Body, VType, Vfs, Vnode};
use crate::{Errno, Host, Result, UserMem};

/// Boot parameters (what `rump_server`'s options set in NetBSD's environment variables).
#[derive(Clone, Debug)]
pub struct BootConfig {
    /// Number of virtual CPUs (`-c`, `RUMP_NCPU`); at least 1.
    pub ncpu: usize,
    /// Verbose boot (`-v`, `RUMP_VERBOSE`).
    pub verbose: bool,
    /// The kernel's host name, `rump-<pid>.<host name>`.
    pub hostname: String,
    /// The VFS faction (`rumpvfs`): without it every file-system syscall is `ENOSYS`.
    pub vfs: bool,
    /// The memory budget (`-r`, `RUMP_MEMLIMIT`; the server gives the host's memory without
    /// it); `None`: unlimited.
    pub mem_limit_bytes: Option<u64>,
    /// The device framework (`librumpdev`, `-lrumpdev`) is loaded: `kern.detachall`.
    pub dev: bool,
    /// File-system types whose component is loaded (`-lrumpfs_tmpfs` …), besides rumpfs,
    /// which comes with the VFS. mount(2) of any other type is `ENODEV`.
    pub filesystems: Vec<crate::fs::FsKind>,
}

/// The rump kernel. Shared by all loop threads as `Arc<Kernel>`.
pub struct Kernel {
    host: Arc<dyn Host>,
    cfg: BootConfig,
    boottime: Timespec,
    boot_mono: Timespec,
    procs: Mutex<PidTable>,
    locks: Arc<Locks>,
    /// The login name of the one session all client processes share (`s_login`).
    login: Mutex<[u8; MAXLOGNAME]>,
    halting: AtomicBool,
    budget: Arc<Budget>,
    modules: crate::module::Modules,
    vfs: Option<Vfs>,
    sysctl: crate::sysctl::Mib,
    /// Vnodes whose open file just had its last close and whose file system acts on it
    /// (`VOP_CLOSE`): run by [`Kernel::run_closes`].
    closing: Mutex<Vec<Arc<crate::vfs::Vnode>>>,
    /// System-call tables of factions outside this crate, registered at boot.
    factions: std::sync::RwLock<Vec<Arc<dyn crate::sys::SyscallTable>>>,
}

/// Where the kernel's uptime (`CLOCK_MONOTONIC`) starts: NetBSD's timecounter begins at
/// one second (kern_tc.c's first timehands), so a client never reads a monotonic time with
/// `tv_sec == 0` (NetBSD's ping takes that as "no time" and prints -1000 ms).
pub const UPTIME_ORIGIN_SEC: i64 = 1;

impl Kernel {
    /// `rump_init()`: boots the kernel. `ncpu` 0 → `EINVAL` (NetBSD panics).
    pub fn boot(cfg: BootConfig, host: Arc<dyn Host>) -> Result<Arc<Kernel>> {
        if cfg.ncpu == 0 {
            return Err(Errno::EINVAL);
        }
        let boottime = Timespec::from_pair(host.clock_realtime());
        let boot_mono = Timespec::from_pair(host.clock_monotonic());
        let budget = match cfg.mem_limit_bytes {
            Some(limit) => Budget::new(limit),
            None => Budget::unlimited(),
        };
        let cache_bytes = cfg
            .mem_limit_bytes
            .map_or(crate::bio::DEFAULT_CACHE_BYTES, |l| l / 2);
        let sysctl = crate::sysctl::Mib::new();
        crate::sysctl::populate(&sysctl, &cfg);
        Ok(Arc::new(Kernel {
            sysctl,
            boottime,
            boot_mono,
            procs: Mutex::new(PidTable::new()),
            locks: Arc::new(Locks::with_budget(budget.clone())),
            login: Mutex::new([0; MAXLOGNAME]),
            closing: Mutex::new(Vec::new()),
            factions: std::sync::RwLock::new(Vec::new()),
            halting: AtomicBool::new(false),
            vfs: cfg.vfs.then(|| {
                let (types, root) = (crate::fs::types(), crate::fs::rumpfs::mount_root);
                Vfs::boot(host.clone(), budget.clone(), cache_bytes, types, root)
            }),
            budget,
            modules: crate::module::Modules::new(&cfg.filesystems),
            host,
            cfg,
        }))
    }

    /// The memory budget every kernel allocation that can grow is charged to.
    pub fn budget(&self) -> &Arc<Budget> {
        &self.budget
    }

    /// The sysctl MIB; a faction adds its nodes with `Mib::register`.
    pub fn sysctl(&self) -> &crate::sysctl::Mib {
        &self.sysctl
    }

    /// The host door.
    pub fn host(&self) -> &dyn Host {
        &*self.host
    }

    /// The host door, shared (for objects that read the clock later, such as a kqueue).
    pub fn host_arc(&self) -> Arc<dyn Host> {
        self.host.clone()
    }

    /// Boot parameters.
    pub fn config(&self) -> &BootConfig {
        &self.cfg
    }

    /// The VFS; `ENOSYS` when the kernel was booted without the `rumpvfs` faction.
    pub fn vfs(&self) -> Result<&Vfs> {
        self.vfs.as_ref().ok_or(Errno::ENOSYS)
    }

    /// Wall-clock time of boot (`boottime`).
    pub fn boottime(&self) -> Timespec {
        self.boottime
    }

    /// The kernel's `CLOCK_MONOTONIC` (`nanouptime`): time since boot plus
    /// [`UPTIME_ORIGIN_SEC`], as NetBSD's timecounter starts its uptime at one second.
    pub fn uptime(&self) -> Timespec {
        let up = Timespec::from_pair(self.host.clock_monotonic()).since(self.boot_mono);
        Timespec {
            sec: up.sec + UPTIME_ORIGIN_SEC,
            nsec: up.nsec,
        }
    }

    fn procs(&self) -> MutexGuard<'_, PidTable> {
        self.procs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Allocates a pid and registers a process built by `make` for it.
    fn new_proc(&self, make: impl FnOnce(i32) -> Proc) -> Result<Arc<Proc>> {
        let mut procs = self.procs();
        let pid = procs.alloc()?;
        let p = Arc::new(make(pid));
        procs.insert(&p);
        Ok(p)
    }

    /// GUEST handshake: a new process, child of init, root, umask 022, fds 0–2 on the console.
    pub fn spawn_guest(&self, comm: &[u8]) -> Result<Arc<Proc>> {
        let fd = FdTable::new();
        // rump_consdev_init: one console file, on 0 and dup'ed to 1 and 2.
        let cons = File::new(FileKind::Console(Console), FWRITE);
        for n in 0..3 {
            fd.install(cons.clone(), n, false)?;
        }
        let p = self.new_proc(|pid| Proc::new(pid, INIT_PID, comm, Cred::default(), CMASK, fd))?;
        p.set_rlimits(self.default_rlimits());
        Ok(p)
    }

    /// proc0's resource limits, with locked memory bounded by the `-r` budget (else by a
    /// rump kernel's default `physmem`).
    fn default_rlimits(&self) -> [crate::abi::Rlimit; crate::abi::RLIM_NLIMITS] {
        let mem = match self.budget().limit() {
            u64::MAX => crate::abi::RUMP_PHYSMEM_BYTES,
            n => n,
        };
        crate::proc::default_limits(mem)
    }

    /// PREFORK: an intermediate child of `parent` with a copy of its descriptor table.
    pub fn prefork(&self, parent: &Arc<Proc>) -> Result<Arc<Proc>> {
        let fd = parent.fd.copy();
        let (comm, cred, umask) = (parent.comm(), parent.cred(), parent.umask());
        let p = self.new_proc(|pid| Proc::new(pid, parent.pid(), &comm, cred, umask, fd))?;
        p.dirs.copy_from(&parent.dirs);
        p.set_rlimits(parent.rlimits());
        sys::ktrace::fork(parent, &p);
        Ok(p)
    }

    /// FORK handshake: the final child, a new pid re-parented to init, with the prepared
    /// process's descriptors, credentials and umask; the prepared process is released.
    pub fn adopt_fork(&self, prepared: Arc<Proc>, comm: &[u8]) -> Result<Arc<Proc>> {
        let (cred, umask) = (prepared.cred(), prepared.umask());
        let child = {
            let mut procs = self.procs();
            let pid = procs.alloc()?;
            let child = Arc::new(Proc::new(
                pid,
                INIT_PID,
                comm,
                cred,
                umask,
                prepared.fd.take(),
            ));
            procs.insert(&child);
            child
        };
        child.dirs.copy_from(&prepared.dirs);
        child.set_rlimits(prepared.rlimits());
        sys::ktrace::fork(&prepared, &child);
        // The fork is complete: the parent's watchers see NOTE_FORK with the child's pid.
        if let Some(parent) = self.find_proc(prepared.ppid()) {
            parent.notes.fork(parent.pid(), &child, self.budget());
        }
        self.exit_process(&prepared);
        Ok(child)
    }

    /// EXEC handshake: closes close-on-exec descriptors and sets the command name.
    pub fn exec(&self, p: &Proc, comm: &[u8]) {
        self.closed(p, p.fd.close_on_exec());
        p.set_comm(comm);
        p.notes.exec();
    }

    /// `fd_close`'s tail for files whose descriptors `p` just removed: POSIX semantics drop
    /// `p`'s record locks on each vnode, then the references go (the last one closes the
    /// open file and releases its flock locks).
    pub(crate) fn closed(&self, p: &Proc, files: impl IntoIterator<Item = Arc<File>>) {
        for fp in files {
            if let Some(vn) = fp.vnode() {
                self.locks.release_posix(vn.lock_key(), p.pid());
            }
            self.last_close(fp);
        }
    }

    /// Drops a reference to an open file; when it is the last one and the vnode's file
    /// system acts on the close (a device that drives its own data: an etfs block device
    /// writes its dirty blocks back, as spec_close's `vinvalbuf`), queues the vnode for
    /// [`Kernel::run_closes`]. A reference held elsewhere at this moment (a syscall in
    /// flight on the file) makes this not the last close; its data then goes at the next
    /// sync, unmount or halt.
    fn last_close(&self, fp: Arc<File>) {
        if Arc::strong_count(&fp) != 1 {
            return;
        }
        if let Some(vn) = fp.vnode().filter(|v| v.drives_data()) {
            // Each device at most once: the queue stays bounded by the devices, also for a
            // client that only ever closes by dup2 (which queues but does not run it).
            let mut q = self.closing.lock().unwrap_or_else(|e| e.into_inner());
            if !q.iter().any(|v| Arc::ptr_eq(v, vn)) {
                q.push(vn.clone());
            }
        }
    }

    /// Vnodes waiting for [`Kernel::run_closes`] (tests).
    #[cfg(test)]
    pub(crate) fn closes_queued(&self) -> usize {
        self.closing.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// `VOP_CLOSE` of the vnodes whose open files had their last close: what the file
    /// systems do then (write-back). Called by close(2) and after a process exits.
    pub async fn run_closes(&self) {
        loop {
            let vns = std::mem::take(&mut *self.closing.lock().unwrap_or_else(|e| e.into_inner()));
            if vns.is_empty() {
                return;
            }
            for vn in vns {
                // As NetBSD's close(2) after the descriptor went: nothing to undo, and a
                // failed write-back leaves the blocks dirty for the next sync.
                let _ = vn.close().await;
            }
        }
    }

    /// The advisory lock table (record locks and flock).
    pub fn locks(&self) -> &Arc<Locks> {
        &self.locks
    }

    /// The session's login name (`s_login`, NUL-padded).
    pub fn login(&self) -> [u8; MAXLOGNAME] {
        *self.login.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn set_login(&self, name: [u8; MAXLOGNAME]) {
        *self.login.lock().unwrap_or_else(|e| e.into_inner()) = name;
    }

    /// Disconnect (sp-protocol.md §12 step 3): marks `p` exiting so that every sleep of its
    /// in-flight syscalls ends with `EINTR`, now and later. Call before waiting for them;
    /// [`Kernel::exit_process`] follows once they are done. Idempotent.
    pub fn begin_exit(&self, p: &Proc) {
        p.interrupt().raise();
    }

    /// Process exit: closes every descriptor, re-parents children to init, frees the pid.
    /// Idempotent.
    pub fn exit_process(&self, p: &Arc<Proc>) {
        if !p.mark_exited() {
            return;
        }
        let files = p.fd.close_from(0);
        self.locks.release_proc(p.pid());
        // A client's exit carries no status: `W_EXITCODE(0, 0)`, as NetBSD's for a process
        // whose last lwp went away.
        p.notes.exit(0);
        for fp in files {
            self.last_close(fp);
        }
        let mut procs = self.procs();
        procs.remove(p.pid());
        for child in procs.procs().filter(|c| c.ppid() == p.pid()) {
            child.set_ppid(INIT_PID);
        }
    }

    /// Every live client process (for scans over all processes: unmount's busy check,
    /// moving current directories onto a new mount).
    pub(crate) fn all_procs(&self) -> Vec<Arc<Proc>> {
        self.procs().procs().collect()
    }

    /// The live client process `pid` (`proc_find`).
    pub(crate) fn find_proc(&self, pid: i32) -> Option<Arc<Proc>> {
        self.procs().get(pid)
    }

    /// Whether mount(2) may mount `kind`: its component is loaded (rumpfs: the VFS).
    pub fn has_filesystem(&self, kind: crate::fs::FsKind) -> bool {
        self.vfs.is_some() && self.modules.has_fs(kind)
    }

    /// `vfs_getopsbyname` for mount(2): the registered type `name` (`ufs` is `ffs`) if it
    /// is loaded, else a loaded component's file system of that name; `ENODEV` otherwise
    /// (NetBSD tries `module_autoload` of the type, which finds no module in a rump kernel).
    pub fn fs_type(&self, name: &[u8]) -> Result<Arc<dyn crate::vfs::FsType>> {
        let name: &[u8] = if name == b"ufs" { b"ffs" } else { name };
        let vfs = self.vfs()?;
        match crate::fs::FsKind::from_name(name) {
            Some(k) if self.has_filesystem(k) => vfs.fs_type(name).ok_or(Errno::ENODEV),
            Some(_) => Err(Errno::ENODEV),
            None => match self.modules.fstype(name) {
                Some((n, fs)) => Ok(Arc::new(crate::fs::tmpfs::ComponentType::new(n, fs))),
                None => Err(Errno::ENODEV),
            },
        }
    }

    /// The module table (`modctl`, `-m`, external components).
    pub fn modules(&self) -> &crate::module::Modules {
        &self.modules
    }

    /// Adds a faction's system calls (NetBSD's rump components filling the syscall table
    /// at init): numbers the kernel does not serve itself are offered to the tables in
    /// registration order. Done at boot, before clients come.
    pub fn register_syscalls(&self, table: Arc<dyn crate::sys::SyscallTable>) {
        self.factions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(table);
    }

    /// The registered table that serves `nr`, if any.
    pub(crate) fn faction_syscall(&self, nr: u32) -> Option<Arc<dyn crate::sys::SyscallTable>> {
        let t = self.factions.read().unwrap_or_else(|e| e.into_inner());
        t.iter().find(|t| t.serves(nr)).cloned()
    }

    /// Number of live client processes (proc0 and init not counted).
    pub fn process_count(&self) -> usize {
        self.procs().len()
    }

    /// Runs syscall `sysnum` for `p` with the raw argument slots (32-bit arguments in the
    /// low half). Unimplemented numbers and numbers ≥ 512 give `ENOSYS`.
    pub async fn syscall<M: UserMem>(
        &self,
        p: &Arc<Proc>,
        mem: &M,
        sysnum: u32,
        args: &[u64; 8],
    ) -> SyscallOutcome {
        // ktrace(2): one relaxed load when no process was ever traced. The call is pinned
        // where it is built, in this future's state (see `for_process`).
        if !sys::ktrace::ANY.load(Ordering::Relaxed) {
            let call = std::pin::pin!(sys::dispatch(self, p, mem, sysnum, args));
            return crate::sync::for_process(p, call).await;
        }
        let call = sys::dispatch(self, p, mem, sysnum, args);
        let traced = std::pin::pin!(sys::ktrace::around(self, p, mem, sysnum, args, call));
        crate::sync::for_process(p, traced).await
    }

    /// The kernel half of reboot(2) (`cpu_reboot` in rumpkern/emul.c): prints the halting
    /// line and, unless `RB_DUMP` or `RB_NOSYNC`, syncs and unmounts with NetBSD's console
    /// lines (`syncing disks... done`, `unmounting file systems...`, `unmounting done`),
    /// syncing everything (dirty blocks of devices
    /// that clients still hold open included). Awaited on a loop, so host files that
    /// complete on the loops can be flushed. Idempotent: a second call returns at once.
    pub async fn shutdown(&self, howto: u32) {
        if self.halting.swap(true, Ordering::SeqCst) {
            return;
        }
        self.host.console_write(b"rump kernel halting...\n");
        if howto & (RB_DUMP | RB_NOSYNC) != 0 {
            return;
        }
        // rump_vfs_fini = vfs_shutdown: vfs_sync_all, then vfs_unmountall, with their
        // console lines (a kernel without the VFS faction has neither).
        let Some(v) = &self.vfs else {
            return;
        };
        self.host.console_write(b"syncing disks... ");
        let synced = v.sync_all_async().await;
        self.host.console_write(match synced {
            Ok(()) => b"done\n".as_slice(),
            Err(_) => b"giving up\n".as_slice(),
        });
        self.host.console_write(b"unmounting file systems...\n");
        let unmounted = v.shutdown_async().await;
        self.host.console_write(b"unmounting done\n");
        if let Err(e) = synced.and(unmounted) {
            // NetBSD warns and goes on; the data stays dirty in memory and is lost.
            let msg = format!("WARNING: some file systems would not unmount ({e})\n");
            self.host.console_write(msg.as_bytes());
        }
    }

    /// Whether a shutdown has begun.
    pub fn halting(&self) -> bool {
        self.halting.load(Ordering::SeqCst)
    }

    /// `vfs_shutdown`: sync every file system (dirty blocks to the host files, then their
    /// `fdatasync`). Blocks the calling thread until done: call it off the loops, or use
    /// [`Kernel::sync_all_async`] from a loop task when host files complete on the loops.
    pub fn sync_all(&self) -> Result<()> {
        match &self.vfs {
            Some(v) => v.sync_all(),
            None => Ok(()),
        }
    }

    /// [`Kernel::sync_all`] awaited on a loop.
    pub async fn sync_all_async(&self) -> Result<()> {
        match &self.vfs {
            Some(v) => v.sync_all_async().await,
            None => Ok(()),
        }
    }

    /// `rump_pub_etfs_register_withsize(key, host, type, begin, size)`: maps the window
    /// `[begin, begin + size)` of `host` (`size` None: to the end of the host file) at
    /// `key` in the rumpfs namespace. Errors as netbsd-abi.md §7.2: `EINVAL` for a key
    /// without a leading `/` or a window outside the host file, `EEXIST` for a taken key,
    /// `EBUSY` beyond 16 host devices, `ENOSYS` without the VFS.
    pub fn etfs_register(
        &self,
        key: &[u8],
        host: Arc<dyn crate::hostio::HostFile>,
        etype: EtfsType,
        begin: u64,
        size: Option<u64>,
    ) -> Result<()> {
        let vfs = self.vfs()?;
        let m = vfs.root_mount();
        let keys = crate::fs::rumpfs::keys(m).ok_or(Errno::ENOSYS)?;
        let (key, node) = keys.make_node(key, host, etype, begin, size, vfs.bio())?;
        let now = vfs.now();
        let (vtype, rdev) = match etype {
            EtfsType::Reg => (VType::Reg, NODEV),
            EtfsType::Blk => (VType::Blk, node.rdev().unwrap_or(NODEV)),
            EtfsType::Chr => (VType::Chr, node.rdev().unwrap_or(NODEV)),
        };
        let attr = Attr {
            mode: 0o755,
            nlink: 1,
            rdev,
            atime: now,
            mtime: now,
            ctime: now,
            birthtime: now,
            ..Attr::default()
        };
        let vn = Vnode::new(
            Arc::downgrade(m),
            m.alloc_ino(),
            vtype,
            attr,
            Body::Node(Box::new(node)),
        );
        keys.insert(key, vn)
    }

    /// `rump_pub_etfs_remove(key)`: removes the mapping after writing its dirty blocks
    /// back; `ENOENT` for an unknown key. Open files of the key keep working on the host
    /// file until closed.
    pub async fn etfs_remove(&self, key: &[u8]) -> Result<()> {
        let vfs = self.vfs()?;
        let keys = crate::fs::rumpfs::keys(vfs.root_mount()).ok_or(Errno::ENOSYS)?;
        let vn = keys.remove(key)?;
        vn.fsync(true).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::sysnum::{SYS_close, SYS_dup, SYS_getpid};
    use crate::testutil::{block_on, Fixture, TestHost, TestMem};

    fn getpid(k: &Kernel, p: &Arc<Proc>) -> Result<[i64; 2]> {
        block_on(k.syscall(p, &TestMem::new(), SYS_getpid, &[0; 8])).result
    }

    #[test]
    fn pids_count_from_two_and_fork_children_belong_to_init() {
        let f = Fixture::new();
        assert_eq!((f.p.pid(), f.p.ppid()), (2, 1));
        let q = f.k.spawn_guest(b"second").unwrap();
        assert_eq!(q.pid(), 3);
        let prepared = f.k.prefork(&q).unwrap();
        assert_eq!((prepared.pid(), prepared.ppid()), (4, 3));
        assert_eq!(f.k.process_count(), 3);
        let child = f.k.adopt_fork(prepared.clone(), b"child").unwrap();
        assert_eq!((child.pid(), child.ppid()), (5, 1));
        assert_eq!(getpid(&f.k, &child), Ok([5, 1]));
        assert!(prepared.exited());
        assert_eq!(f.k.process_count(), 3);
        // Freed pids are not reused soon.
        f.k.exit_process(&q);
        assert_eq!(f.k.spawn_guest(b"x").unwrap().pid(), 6);
    }

    #[test]
    fn fork_copies_the_descriptor_table() {
        let f = Fixture::new();
        let mem = TestMem::new();
        let call =
            |p: &Arc<Proc>, nr, a0| block_on(f.k.syscall(p, &mem, nr, &[a0, 0, 0, 0, 0, 0, 0, 0]));
        assert_eq!(call(&f.p, SYS_dup, 1).result, Ok([3, 0]));
        f.k.exec(&f.p, b"");
        let prepared = f.k.prefork(&f.p).unwrap();
        assert_eq!(prepared.fd_count(), 4);
        // After PREFORK the tables are separate.
        assert_eq!(call(&f.p, SYS_close, 3).result, Ok([0, 0]));
        assert_eq!(prepared.fd_count(), 4);
        assert_eq!(prepared.comm(), b"???");
        let child = f.k.adopt_fork(prepared.clone(), &prepared.comm()).unwrap();
        assert_eq!(child.fd_count(), 4);
        assert_eq!(prepared.fd_count(), 0);
        assert_eq!(call(&child, SYS_close, 3).result, Ok([0, 0]));
        assert_eq!(child.comm(), b"???");
    }

    #[test]
    fn exit_closes_everything_and_reparents() {
        let f = Fixture::new();
        let prepared = f.k.prefork(&f.p).unwrap();
        assert_eq!(f.k.process_count(), 2);
        f.k.exit_process(&f.p);
        assert_eq!(f.p.fd_count(), 0);
        assert_eq!(f.k.process_count(), 1);
        assert_eq!(prepared.ppid(), 1);
        f.k.exit_process(&f.p);
        assert_eq!(f.k.process_count(), 1);
        f.k.exit_process(&prepared);
        assert_eq!(f.k.process_count(), 0);
        assert_eq!(prepared.fd_count(), 0);
    }

    #[test]
    fn command_names_are_cut_to_sixteen_bytes() {
        let f = Fixture::new();
        assert_eq!(f.p.comm(), b"test");
        let p = f.k.spawn_guest(b"abcdefghijklmnopqrstuvwxyz").unwrap();
        assert_eq!(p.comm(), b"abcdefghijklmnop");
        assert_eq!(f.k.spawn_guest(b"ab\0cd").unwrap().comm(), b"ab");
        assert_eq!(f.k.spawn_guest(b"").unwrap().comm(), b"???");
        assert_eq!(
            (p.umask(), p.cred(), p.fd_count()),
            (0o022, Cred::default(), 3)
        );
    }

    #[test]
    fn boot_needs_a_cpu_and_shutdown_is_idempotent() {
        let host = Arc::new(TestHost::default());
        let cfg = BootConfig {
            ncpu: 0,
            verbose: false,
            hostname: String::new(),
            vfs: false,
            mem_limit_bytes: None,
            filesystems: Vec::new(),
            dev: false,
        };
        assert_eq!(
            Kernel::boot(cfg.clone(), host.clone()).err(),
            Some(Errno::EINVAL)
        );
        let k = Kernel::boot(BootConfig { ncpu: 2, ..cfg }, host.clone()).unwrap();
        assert!(!k.halting());
        block_on(k.shutdown(crate::abi::RB_NOSYNC));
        block_on(k.shutdown(0));
        assert!(k.halting());
        assert_eq!(host.console(), b"rump kernel halting...\n");
        assert_eq!(k.config().ncpu, 2);
    }

    #[test]
    fn uptime_starts_at_one_second_as_netbsd() {
        // NetBSD's rump kernel answers CLOCK_MONOTONIC 1.32 s 0.3 s after boot; a zero
        // tv_sec makes NetBSD's ping print -1000 ms for a reply in the first second.
        let host = Arc::new(TestHost::default());
        let cfg = BootConfig {
            ncpu: 1,
            verbose: false,
            hostname: String::new(),
            vfs: false,
            mem_limit_bytes: None,
            filesystems: Vec::new(),
            dev: false,
        };
        let k = Kernel::boot(cfg, host).unwrap();
        // The test host's monotonic clock moves 1.5 s per reading: boot read it once, so
        // 1.5 s have passed since boot, and the uptime is one second more.
        let up = k.uptime();
        assert_eq!((up.sec, up.nsec), (UPTIME_ORIGIN_SEC + 1, 500_000_000));
    }

    #[test]
    fn kernel_and_proc_are_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Kernel>();
        assert_send_sync::<Proc>();
        assert_send_sync::<crate::file::File>();
    }
}

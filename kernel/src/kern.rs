//! The kernel object: boot, the process lifecycle the sp session drives, and shutdown.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::abi::{Timespec, CMASK, FWRITE, RB_DUMP, RB_NOSYNC};
use crate::file::{Console, File, FileKind};
use crate::proc::{Cred, FdTable, PidTable, Proc, INIT_PID};
use crate::sys::{self, SyscallOutcome};
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
}

/// The rump kernel. Shared by all loop threads as `Arc<Kernel>`.
pub struct Kernel {
    host: Arc<dyn Host>,
    cfg: BootConfig,
    boottime: Timespec,
    boot_mono: Timespec,
    procs: Mutex<PidTable>,
    halting: AtomicBool,
}

impl Kernel {
    /// `rump_init()`: boots the kernel. `ncpu` 0 → `EINVAL` (NetBSD panics).
    pub fn boot(cfg: BootConfig, host: Arc<dyn Host>) -> Result<Arc<Kernel>> {
        if cfg.ncpu == 0 {
            return Err(Errno::EINVAL);
        }
        let boottime = Timespec::from_pair(host.clock_realtime());
        let boot_mono = Timespec::from_pair(host.clock_monotonic());
        Ok(Arc::new(Kernel {
            host,
            cfg,
            boottime,
            boot_mono,
            procs: Mutex::new(PidTable::new()),
            halting: AtomicBool::new(false),
        }))
    }

    /// The host door.
    pub fn host(&self) -> &dyn Host {
        &*self.host
    }

    /// Boot parameters.
    pub fn config(&self) -> &BootConfig {
        &self.cfg
    }

    /// Wall-clock time of boot (`boottime`).
    pub fn boottime(&self) -> Timespec {
        self.boottime
    }

    /// Time since boot (`nanouptime`), the kernel's `CLOCK_MONOTONIC`.
    pub fn uptime(&self) -> Timespec {
        Timespec::from_pair(self.host.clock_monotonic()).since(self.boot_mono)
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
        self.new_proc(|pid| Proc::new(pid, INIT_PID, comm, Cred::default(), CMASK, fd))
    }

    /// PREFORK: an intermediate child of `parent` with a copy of its descriptor table.
    pub fn prefork(&self, parent: &Arc<Proc>) -> Result<Arc<Proc>> {
        let fd = parent.fd.copy();
        let (comm, cred, umask) = (parent.comm(), parent.cred(), parent.umask());
        self.new_proc(|pid| Proc::new(pid, parent.pid(), &comm, cred, umask, fd))
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
        self.exit_process(&prepared);
        Ok(child)
    }

    /// EXEC handshake: closes close-on-exec descriptors and sets the command name.
    pub fn exec(&self, p: &Proc, comm: &[u8]) {
        drop(p.fd.close_on_exec());
        p.set_comm(comm);
    }

    /// Process exit: closes every descriptor, re-parents children to init, frees the pid.
    /// Idempotent.
    pub fn exit_process(&self, p: &Arc<Proc>) {
        if !p.mark_exited() {
            return;
        }
        drop(p.fd.close_from(0));
        let mut procs = self.procs();
        procs.remove(p.pid());
        for child in procs.procs().filter(|c| c.ppid() == p.pid()) {
            child.set_ppid(INIT_PID);
        }
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
        sys::dispatch(self, p, mem, sysnum, args).await
    }

    /// The kernel half of reboot(2) (`cpu_reboot` in rumpkern/emul.c): prints the halting
    /// line and, unless `RB_DUMP` or `RB_NOSYNC`, syncs everything. Idempotent.
    pub fn shutdown(&self, howto: u32) {
        if self.halting.swap(true, Ordering::SeqCst) {
            return;
        }
        self.host.console_write(b"rump kernel halting...\n");
        if howto & (RB_DUMP | RB_NOSYNC) == 0 {
            self.sync_all();
        }
    }

    /// Whether a shutdown has begun.
    pub fn halting(&self) -> bool {
        self.halting.load(Ordering::SeqCst)
    }

    /// `vfs_shutdown`: sync and unmount every file system. Nothing is mounted yet; the VFS
    /// hooks in here.
    fn sync_all(&self) {}
}

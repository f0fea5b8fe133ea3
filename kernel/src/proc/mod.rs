//! Processes (`struct proc`): pid, parent, credentials, umask, command name, descriptors.

mod fd;
mod limits;
mod pid;

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};
use std::sync::Mutex;

use crate::abi::{MAXCOMLEN, NGROUPS_MAX};
use crate::sync::Interrupt;

pub use fd::{Closed, FdTable};
pub use limits::{defaults as default_limits, Limits};
pub use pid::{PidTable, FIRST_PID};

/// Pid of init, the parent of every client process.
pub const INIT_PID: i32 = 1;

/// Credentials (`kauth_cred_t`, the parts in use).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cred {
    /// Real user id.
    pub uid: u32,
    /// Effective user id.
    pub euid: u32,
    /// Saved set-user-id.
    pub svuid: u32,
    /// Real group id.
    pub gid: u32,
    /// Effective group id.
    pub egid: u32,
    /// Saved set-group-id.
    pub svgid: u32,
    /// Number of supplementary groups in use.
    pub ngroups: usize,
    /// Supplementary groups; the first `ngroups` are valid.
    pub groups: [u32; NGROUPS_MAX],
}

impl Cred {
    /// The supplementary groups.
    pub fn groups(&self) -> &[u32] {
        &self.groups[..self.ngroups]
    }

    /// Whether `gid` is the effective group or a supplementary group (`kauth_cred_ismember_gid`
    /// plus the egid, as permission checks use it).
    pub fn in_group(&self, gid: u32) -> bool {
        self.egid == gid || self.groups().contains(&gid)
    }

    /// Whether these are superuser credentials (euid 0).
    pub fn is_root(&self) -> bool {
        self.euid == 0
    }
}

/// A process of the rump kernel; one per client connection (plus prepared fork children).
pub struct Proc {
    pid: i32,
    ppid: AtomicI32,
    comm: Mutex<Vec<u8>>,
    cred: Mutex<Cred>,
    umask: AtomicU32,
    /// `PK_SUGID`: credentials changed (set*id, setgroups).
    sugid: AtomicBool,
    exited: AtomicBool,
    /// Set by `Kernel::begin_exit`: sleeps end with `EINTR`.
    intr: Interrupt,
    /// The descriptor table.
    pub(crate) fd: FdTable,
    /// Resource limits (`p_rlimit`); `RLIMIT_NOFILE` is mirrored into the table.
    limits: Limits,
    /// Current and root directories.
    pub(crate) dirs: crate::vfs::ProcDirs,
    /// ktrace(2) state (`p_traceflag`, `p_tracep`): see `sys/ktrace.rs`.
    pub(crate) ktrace: Mutex<Option<crate::sys::ktrace::Trace>>,
    /// Its `EVFILT_PROC` and `EVFILT_SIGNAL` knotes (`p_klist`).
    pub(crate) notes: crate::file::kqueue::ProcNotes,
}

impl Proc {
    pub(crate) fn new(
        pid: i32,
        ppid: i32,
        comm: &[u8],
        cred: Cred,
        umask: u32,
        fd: FdTable,
    ) -> Proc {
        Proc {
            pid,
            ppid: AtomicI32::new(ppid),
            comm: Mutex::new(comm_name(comm)),
            cred: Mutex::new(cred),
            umask: AtomicU32::new(umask),
            sugid: AtomicBool::new(false),
            exited: AtomicBool::new(false),
            intr: Interrupt::new(),
            fd,
            limits: Limits::new(limits::defaults(crate::abi::RUMP_PHYSMEM_BYTES)),
            dirs: Default::default(),
            ktrace: Mutex::new(None),
            notes: Default::default(),
        }
    }

    /// Resource limit `which` (`EINVAL` if unknown).
    pub fn rlimit(&self, which: u32) -> crate::Result<crate::abi::Rlimit> {
        self.limits.get(which)
    }

    /// The soft limit of a known resource.
    pub(crate) fn rlimit_cur(&self, which: u32) -> u64 {
        self.limits.cur(which)
    }

    /// `dosetrlimit` for this process (see [`Limits::set`]); a new `RLIMIT_NOFILE` soft
    /// limit bounds the descriptor table from now on.
    pub(crate) fn set_rlimit(
        &self,
        which: u32,
        new: crate::abi::Rlimit,
        root: bool,
    ) -> crate::Result<()> {
        let set = self.limits.set(which, new, root)?;
        if which == crate::abi::RLIMIT_NOFILE {
            self.fd.set_limit(set.cur);
        }
        Ok(())
    }

    /// Replaces every limit (a new process, a fork child).
    pub(crate) fn set_rlimits(&self, table: [crate::abi::Rlimit; crate::abi::RLIM_NLIMITS]) {
        self.limits.set_all(table);
        self.fd
            .set_limit(table[crate::abi::RLIMIT_NOFILE as usize].cur);
    }

    /// Every limit, for a child.
    pub(crate) fn rlimits(&self) -> [crate::abi::Rlimit; crate::abi::RLIM_NLIMITS] {
        self.limits.all()
    }

    /// The descriptor table (for factions outside this crate).
    pub fn fds(&self) -> &FdTable {
        &self.fd
    }

    /// Process id.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Parent process id.
    pub fn ppid(&self) -> i32 {
        self.ppid.load(Ordering::Relaxed)
    }

    pub(crate) fn set_ppid(&self, ppid: i32) {
        self.ppid.store(ppid, Ordering::Relaxed);
    }

    /// Command name (`p_comm`), at most `MAXCOMLEN` bytes.
    pub fn comm(&self) -> Vec<u8> {
        self.comm.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn set_comm(&self, name: &[u8]) {
        *self.comm.lock().unwrap_or_else(|e| e.into_inner()) = comm_name(name);
    }

    /// Number of open descriptors.
    pub fn fd_count(&self) -> usize {
        self.fd.count()
    }

    /// Credentials.
    pub fn cred(&self) -> Cred {
        *self.cred.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the credentials with what `change` makes of them, atomically; `change` may
    /// refuse with an errno (`proc_crmod_enter` … `proc_crmod_leave`). Returns whether they
    /// changed; a change marks the process `PK_SUGID`.
    pub(crate) fn modify_cred(
        &self,
        change: impl FnOnce(&Cred) -> crate::Result<Cred>,
    ) -> crate::Result<bool> {
        let mut cred = self.cred.lock().unwrap_or_else(|e| e.into_inner());
        let new = change(&cred)?;
        if new == *cred {
            return Ok(false);
        }
        *cred = new;
        self.sugid.store(true, Ordering::Relaxed);
        Ok(true)
    }

    /// Marks the process `PK_SUGID` (credentials were set, even to the same values).
    pub(crate) fn set_sugid(&self) {
        self.sugid.store(true, Ordering::Relaxed);
    }

    /// The file creation mask.
    pub fn umask(&self) -> u32 {
        self.umask.load(Ordering::Relaxed)
    }

    /// Sets the file creation mask; returns the old one.
    pub(crate) fn swap_umask(&self, mask: u32) -> u32 {
        self.umask.swap(mask, Ordering::Relaxed)
    }

    /// Whether the process changed credentials (`PK_SUGID`).
    pub fn sugid(&self) -> bool {
        self.sugid.load(Ordering::Relaxed)
    }

    /// Marks the process exited; true for the first caller only.
    pub(crate) fn mark_exited(&self) -> bool {
        !self.exited.swap(true, Ordering::AcqRel)
    }

    /// Whether the process has exited.
    pub fn exited(&self) -> bool {
        self.exited.load(Ordering::Acquire)
    }

    /// The process's interrupt: raised by `Kernel::begin_exit`, ends its sleeps with `EINTR`.
    pub fn interrupt(&self) -> &Interrupt {
        &self.intr
    }

    /// Whether the process is exiting (its sleeps fail with `EINTR`).
    pub fn exiting(&self) -> bool {
        self.intr.is_raised()
    }
}

impl std::fmt::Debug for Proc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proc")
            .field("pid", &self.pid)
            .field("ppid", &self.ppid())
            .field("comm", &String::from_utf8_lossy(&self.comm()))
            .finish_non_exhaustive()
    }
}

/// Name used when a client sends an empty program name.
pub const NONAME: &[u8] = b"???";

/// `strlcpy(p_comm, name, MAXCOMLEN + 1)`: up to the first NUL, at most 16 bytes.
fn comm_name(name: &[u8]) -> Vec<u8> {
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    let name = &name[..end.min(MAXCOMLEN)];
    if name.is_empty() {
        NONAME.to_vec()
    } else {
        name.to_vec()
    }
}

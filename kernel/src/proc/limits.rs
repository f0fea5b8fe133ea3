//! A process's resource limits (`p_rlimit`, kern_resource.c): the defaults of a rump
//! kernel's proc0, NetBSD's rules for changing them, inherited by fork.

use std::sync::Mutex;

use crate::abi::*;
use crate::{Errno, Result};

/// The limits of one process.
pub struct Limits {
    table: Mutex<[Rlimit; RLIM_NLIMITS]>,
}

/// proc0's limits in a NetBSD rump kernel (`proc0_init`, `uvm_init_limits` of rumpkern's
/// vm.c): everything unlimited but the stack, descriptors, processes, threads and locked
/// memory; `mem_bytes` is the kernel's memory (`uvmexp.free`: `-r`, else rump's `physmem`).
pub fn defaults(mem_bytes: u64) -> [Rlimit; RLIM_NLIMITS] {
    let inf = Rlimit::new(RLIM_INFINITY, RLIM_INFINITY);
    let mut t = [inf; RLIM_NLIMITS];
    let mem = mem_bytes.min(VM_MAXUSER_ADDRESS);
    t[RLIMIT_STACK as usize] = Rlimit::new(DFLSSIZ, MAXSSIZ);
    t[RLIMIT_MEMLOCK as usize] = Rlimit::new(mem / 3, mem);
    t[RLIMIT_NPROC as usize] = Rlimit::new(MAXUPRC.min(MAXPROC), MAXPROC);
    t[RLIMIT_NOFILE as usize] = Rlimit::new(OPEN_MAX as u64, MAXFILES);
    t[RLIMIT_NTHR as usize] = Rlimit::new(MAXUPRC.min(MAXLWP), MAXLWP);
    t
}

impl Limits {
    /// Limits with the given values.
    pub fn new(table: [Rlimit; RLIM_NLIMITS]) -> Limits {
        Limits {
            table: Mutex::new(table),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, [Rlimit; RLIM_NLIMITS]> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every limit (to copy into a child).
    pub fn all(&self) -> [Rlimit; RLIM_NLIMITS] {
        *self.lock()
    }

    /// Replaces every limit (fork).
    pub fn set_all(&self, table: [Rlimit; RLIM_NLIMITS]) {
        *self.lock() = table;
    }

    /// Limit `which`; `EINVAL` for an unknown one.
    pub fn get(&self, which: u32) -> Result<Rlimit> {
        self.lock()
            .get(which as usize)
            .copied()
            .ok_or(Errno::EINVAL)
    }

    /// The soft limit `which` (a known one).
    pub fn cur(&self, which: u32) -> u64 {
        self.lock()[which as usize].cur
    }

    /// `dosetrlimit`: `EINVAL` for an unknown limit or a soft limit above the hard one;
    /// unchanged values are accepted as they are; otherwise only the superuser may raise a
    /// hard limit (`EPERM`); the file, process, thread, data and stack limits are cut to
    /// the kernel's maxima (the stack's rounded up to pages). Returns what was stored.
    pub fn set(&self, which: u32, mut new: Rlimit, root: bool) -> Result<Rlimit> {
        if which as usize >= RLIM_NLIMITS || new.cur > new.max {
            return Err(Errno::EINVAL);
        }
        let mut t = self.lock();
        let old = &mut t[which as usize];
        if new == *old {
            return Ok(new);
        }
        if !root && new.max > old.max {
            return Err(Errno::EPERM);
        }
        let ceiling = match which {
            RLIMIT_DATA => MAXDSIZ,
            RLIMIT_STACK => MAXSSIZ,
            RLIMIT_NOFILE => MAXFILES,
            RLIMIT_NPROC => MAXPROC,
            RLIMIT_NTHR => MAXLWP,
            _ => u64::MAX,
        };
        new.cur = new.cur.min(ceiling);
        new.max = new.max.min(ceiling);
        if which == RLIMIT_STACK {
            // Both at most MAXSSIZ, a page multiple: rounding cannot overflow.
            new.cur = new.cur.next_multiple_of(4096);
            new.max = new.max.next_multiple_of(4096);
        }
        *old = new;
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_a_rump_kernels() {
        let t = defaults(RUMP_PHYSMEM_BYTES);
        assert_eq!(t[RLIMIT_NOFILE as usize], Rlimit::new(128, 1772));
        assert_eq!(t[RLIMIT_STACK as usize], Rlimit::new(4 << 20, 128 << 20));
        assert_eq!(
            t[RLIMIT_MEMLOCK as usize],
            Rlimit::new(178_956_970, 512 << 20)
        );
        assert_eq!(t[RLIMIT_NPROC as usize], Rlimit::new(160, 532));
        assert_eq!(t[RLIMIT_NTHR as usize], Rlimit::new(160, 2048));
        assert_eq!(t[RLIMIT_CORE as usize].cur, RLIM_INFINITY);
        assert_eq!(t[RLIMIT_FSIZE as usize].max, RLIM_INFINITY);
    }

    #[test]
    fn setting_follows_dosetrlimit() {
        let l = Limits::new(defaults(RUMP_PHYSMEM_BYTES));
        let inf = Rlimit::new(RLIM_INFINITY, RLIM_INFINITY);
        assert_eq!(l.set(12, inf, true), Err(Errno::EINVAL));
        assert_eq!(l.set(u32::MAX, inf, true), Err(Errno::EINVAL));
        let bad = Rlimit::new(2, 1);
        assert_eq!(l.set(RLIMIT_CORE, bad, true), Err(Errno::EINVAL));
        assert_eq!(l.set(RLIMIT_NOFILE, inf, true), Ok(Rlimit::new(1772, 1772)));
        assert_eq!(l.get(RLIMIT_NOFILE), Ok(Rlimit::new(1772, 1772)));
        let s = l.set(RLIMIT_STACK, Rlimit::new(1, 4097), true);
        assert_eq!(s, Ok(Rlimit::new(4096, 8192)));
        let d = l.set(RLIMIT_DATA, Rlimit::new(1 << 20, RLIM_INFINITY), true);
        assert_eq!(d, Ok(Rlimit::new(1 << 20, 8 << 30)));
        // Not root: lower freely, never raise a hard limit, unless unchanged.
        assert_eq!(
            l.set(RLIMIT_CORE, Rlimit::new(0, 1000), false),
            Ok(Rlimit::new(0, 1000))
        );
        let up = Rlimit::new(0, 1001);
        assert_eq!(l.set(RLIMIT_CORE, up, false), Err(Errno::EPERM));
        let same = Rlimit::new(1000, 1000);
        assert_eq!(l.set(RLIMIT_CORE, same, false), Ok(same));
        assert_eq!(l.set(RLIMIT_CORE, same, false), Ok(same));
        assert_eq!(l.cur(RLIMIT_CORE), 1000);
    }
}

//! The per-process descriptor table (`filedesc_t`, kern_descrip.c).
//!
//! Bounded by the process's `RLIMIT_NOFILE` soft limit ([`OPEN_MAX`] unless set, at most
//! `MAXFILES`). Files leaving the table
//! are handed back to the caller so that their last reference drops outside the lock.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::abi::{MAXFILES, OPEN_MAX};
use crate::file::File;
use crate::{Errno, Result};

/// One open descriptor.
#[derive(Clone)]
struct Slot {
    file: Arc<File>,
    cloexec: bool,
}

/// A descriptor table.
pub struct FdTable {
    slots: Mutex<Vec<Option<Slot>>>,
    /// The `RLIMIT_NOFILE` soft limit (`fd_alloc`'s `min(rlim_cur, maxfiles)`).
    limit: AtomicUsize,
    /// The most slots the table ever had (NetBSD's table never shrinks: `dt_nfiles`).
    high: AtomicUsize,
}

/// Files removed from a table; dropping this closes them (outside the table lock).
pub type Closed = Vec<Arc<File>>;

impl FdTable {
    /// An empty table.
    pub fn new() -> FdTable {
        FdTable {
            slots: Mutex::new(Vec::new()),
            limit: AtomicUsize::new(OPEN_MAX),
            high: AtomicUsize::new(0),
        }
    }

    /// NetBSD's `dt_nfiles`, the size its table would have: `NDFILE` (20) slots, grown to
    /// `NDEXTENT` (50) and then doubled as higher descriptors are used. poll(2) and
    /// select(2) bound their descriptor counts by it.
    pub fn nfiles(&self) -> usize {
        let used = self.high.load(Ordering::Relaxed);
        let mut n = 20;
        while n < used {
            n = if n < 50 { 50 } else { n * 2 };
        }
        n
    }

    fn grew(&self, len: usize) {
        self.high.fetch_max(len, Ordering::Relaxed);
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Option<Slot>>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The descriptor limit (`RLIMIT_NOFILE` soft limit).
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// Sets the limit (setrlimit, fork); descriptors already open above it stay open.
    pub fn set_limit(&self, cur: u64) {
        let lim = cur.min(MAXFILES) as usize;
        self.limit.store(lim, Ordering::Relaxed);
    }

    /// `fd_getfile`: the file open on `fd`, or `EBADF`.
    pub fn get(&self, fd: i32) -> Result<Arc<File>> {
        let slots = self.lock();
        let i = usize::try_from(fd).map_err(|_| Errno::EBADF)?;
        match slots.get(i) {
            Some(Some(s)) => Ok(s.file.clone()),
            _ => Err(Errno::EBADF),
        }
    }

    /// `fd_dup`/`fd_allocfile`: installs `file` on the lowest free descriptor ≥ `min`;
    /// `EMFILE` when none is free below the limit.
    pub fn alloc(&self, file: Arc<File>, min: usize, cloexec: bool) -> Result<i32> {
        let mut slots = self.lock();
        let limit = self.limit();
        let fd = (min..limit)
            .find(|&i| slots.get(i).map_or(true, Option::is_none))
            .ok_or(Errno::EMFILE)?;
        if slots.len() <= fd {
            slots.resize(fd + 1, None);
            self.grew(fd + 1);
        }
        slots[fd] = Some(Slot { file, cloexec });
        Ok(fd as i32)
    }

    /// `fd_dup2`: installs `file` on `to` (below the limit), closing what was there.
    pub fn install(&self, file: Arc<File>, to: usize, cloexec: bool) -> Result<Option<Arc<File>>> {
        let mut slots = self.lock();
        if to >= self.limit() {
            return Err(Errno::EBADF);
        }
        if slots.len() <= to {
            slots.resize(to + 1, None);
            self.grew(to + 1);
        }
        let old = slots[to].replace(Slot { file, cloexec });
        Ok(old.map(|s| s.file))
    }

    /// `fd_close`: removes `fd`; `EBADF` if it is not open.
    pub fn close(&self, fd: i32) -> Result<Arc<File>> {
        let mut slots = self.lock();
        let i = usize::try_from(fd).map_err(|_| Errno::EBADF)?;
        let slot = slots
            .get_mut(i)
            .and_then(Option::take)
            .ok_or(Errno::EBADF)?;
        trim(&mut slots);
        Ok(slot.file)
    }

    /// The close-on-exec flag of `fd`.
    pub fn cloexec(&self, fd: i32) -> Result<bool> {
        let slots = self.lock();
        let i = usize::try_from(fd).map_err(|_| Errno::EBADF)?;
        match slots.get(i) {
            Some(Some(s)) => Ok(s.cloexec),
            _ => Err(Errno::EBADF),
        }
    }

    /// `fd_set_exclose`.
    pub fn set_cloexec(&self, fd: i32, on: bool) -> Result<()> {
        let mut slots = self.lock();
        let i = usize::try_from(fd).map_err(|_| Errno::EBADF)?;
        match slots.get_mut(i) {
            Some(Some(s)) => {
                s.cloexec = on;
                Ok(())
            }
            _ => Err(Errno::EBADF),
        }
    }

    /// `fd_lastfile`: the highest open descriptor, −1 if none.
    pub fn last(&self) -> i32 {
        let slots = self.lock();
        slots
            .iter()
            .rposition(Option::is_some)
            .map_or(-1, |i| i as i32)
    }

    /// Every open file (each once per descriptor), for scans such as unmount's busy check.
    pub fn files(&self) -> Vec<Arc<File>> {
        self.lock()
            .iter()
            .flatten()
            .map(|s| s.file.clone())
            .collect()
    }

    /// Number of open descriptors.
    pub fn count(&self) -> usize {
        self.lock().iter().filter(|s| s.is_some()).count()
    }

    /// Removes every descriptor ≥ `from` (`F_CLOSEM`).
    pub fn close_from(&self, from: usize) -> Closed {
        let mut slots = self.lock();
        let closed = slots
            .iter_mut()
            .skip(from)
            .filter_map(Option::take)
            .map(|s| s.file);
        let closed: Closed = closed.collect();
        trim(&mut slots);
        closed
    }

    /// Removes every close-on-exec descriptor (`fd_closeexec`).
    pub fn close_on_exec(&self) -> Closed {
        let mut slots = self.lock();
        let mut closed = Vec::new();
        for slot in slots.iter_mut() {
            if slot.as_ref().is_some_and(|s| s.cloexec) {
                closed.extend(slot.take().map(|s| s.file));
            }
        }
        trim(&mut slots);
        closed
    }

    /// `fd_copy`: a new table referring to the same open files (fork); kqueues are not
    /// inherited (their slots stay empty in the child).
    pub fn copy(&self) -> FdTable {
        let mut slots = self.lock().clone();
        for s in slots.iter_mut() {
            if s.as_ref().is_some_and(|x| x.file.kqueue().is_some()) {
                *s = None;
            }
        }
        trim(&mut slots);
        FdTable {
            slots: Mutex::new(slots),
            limit: AtomicUsize::new(self.limit()),
            high: AtomicUsize::new(self.high.load(Ordering::Relaxed)),
        }
    }

    /// Moves every descriptor into a new table, leaving this one empty.
    pub fn take(&self) -> FdTable {
        FdTable {
            slots: Mutex::new(std::mem::take(&mut *self.lock())),
            limit: AtomicUsize::new(self.limit()),
            high: AtomicUsize::new(self.high.load(Ordering::Relaxed)),
        }
    }
}

impl Default for FdTable {
    fn default() -> Self {
        FdTable::new()
    }
}

/// Drops trailing empty slots, keeping the vector as short as the highest open descriptor.
fn trim(slots: &mut Vec<Option<Slot>>) {
    while slots.last().is_some_and(Option::is_none) {
        slots.pop();
    }
}
